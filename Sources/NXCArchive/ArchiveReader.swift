import CArchive
import Foundation

/// One member of an archive as read back.
public struct ArchiveEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case file, directory, symlink, characterDevice, blockDevice, fifo, other }
    public var path: String
    public var kind: Kind
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    public var mtime: Int64
    public var linkTarget: String?
    /// The member's bytes (empty when read header-only or streamed).
    public var data: [UInt8]
    /// Extended attributes (pax tar), by name.
    public var xattrs: [String: [UInt8]] = [:]
    /// The size the header announces (nil when it gives none). Untrusted: a reader that cares
    /// counts the bytes it gets.
    public var size: Int64? = nil
    /// The target of a hard link (tar), which has no data of its own.
    public var hardlinkTarget: String? = nil
}

/// An archive read member by member: `next()` gives a header, `readData` streams that member's
/// bytes in chunks, so no member is ever whole in memory. Owns the libarchive handle.
public final class ArchiveStream {
    public let path: String
    private var handle: OpaquePointer?

    /// The formats and compressions a stream reads. The restricted ones are for archives from
    /// elsewhere, whose decoders should be few and bounded in memory: plain, gzip (a 32 KiB window)
    /// or zstd (a window of at most 128 MiB, its decoder's default limit), where xz may ask for
    /// more and some formats buffer whole members.
    public enum Accepting: Sendable {
        /// Every format and filter libarchive knows.
        case anything
        /// Tar (ustar, pax, GNU) only.
        case tar
        /// Tar or cpio: what nxc's artefacts are.
        case tarOrCpio

        func enable(_ a: OpaquePointer, formats: Bool) {
            switch self {
            case .anything:
                archive_read_support_filter_all(a)
                if formats { archive_read_support_format_all(a) }
            case .tar, .tarOrCpio:
                archive_read_support_filter_gzip(a)
                archive_read_support_filter_zstd(a)
                if formats { archive_read_support_format_tar(a) }
                if formats && self == .tarOrCpio { archive_read_support_format_cpio(a) }
            }
        }
    }

    /// Opens `path`.
    public convenience init(path: String, accepting: Accepting = .anything) throws {
        try self.init(path: path, accepting: accepting) { a in archive_read_open_filename(a, path, 1 << 16) }
    }

    /// Reads from the current offset of `fd` (which stays open: the caller owns it).
    convenience init(path: String, fd: Int32, accepting: Accepting) throws {
        try self.init(path: path, accepting: accepting) { a in archive_read_open_fd(a, fd, 1 << 16) }
    }

    private init(path: String, accepting: Accepting, open: (OpaquePointer) -> Int32) throws {
        self.path = path
        guard let a = archive_read_new() else {
            throw ArchiveError(path: path, operation: "archive_read_new", message: "out of memory")
        }
        handle = a
        accepting.enable(a, formats: true)
        guard open(a) == ARCHIVE_OK else { throw fail("open") }
    }

    deinit { if let h = handle { archive_read_free(h) } }

    private func fail(_ op: String) -> ArchiveError {
        ArchiveError(path: path, operation: op, message: handle.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error")
    }

    /// The next member's header (`data` empty), or nil after the last one.
    public func next() throws -> ArchiveEntry? {
        guard let a = handle else { return nil }
        var e: OpaquePointer?
        let rc = archive_read_next_header(a, &e)
        if rc == ARCHIVE_EOF { return nil }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = e else { throw fail("read header") }
        let kind: ArchiveEntry.Kind
        switch UInt32(archive_entry_filetype(entry)) {
        case NXC_AE_IFREG: kind = .file
        case NXC_AE_IFDIR: kind = .directory
        case NXC_AE_IFLNK: kind = .symlink
        case NXC_AE_IFCHR: kind = .characterDevice
        case NXC_AE_IFBLK: kind = .blockDevice
        case NXC_AE_IFIFO: kind = .fifo
        default: kind = .other
        }
        var xattrs: [String: [UInt8]] = [:]
        if archive_entry_xattr_reset(entry) > 0 {
            var xname: UnsafePointer<CChar>?
            var xvalue: UnsafeRawPointer?
            var xsize = 0
            while archive_entry_xattr_next(entry, &xname, &xvalue, &xsize) == ARCHIVE_OK, let xname {
                xattrs[String(cString: xname)] = xvalue.map { Array(UnsafeRawBufferPointer(start: $0, count: xsize)) } ?? []
            }
        }
        return ArchiveEntry(path: archive_entry_pathname(entry).map { String(cString: $0) } ?? "",
                            kind: kind, mode: UInt32(archive_entry_perm(entry)),
                            uid: archive_entry_uid(entry), gid: archive_entry_gid(entry),
                            mtime: Int64(archive_entry_mtime(entry)),
                            linkTarget: archive_entry_symlink(entry).map { String(cString: $0) },
                            data: [], xattrs: xattrs,
                            size: archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : nil,
                            hardlinkTarget: archive_entry_hardlink(entry).map { String(cString: $0) })
    }

    /// Streams the current member's bytes to `body`, at most `chunk` bytes at a time; the buffer
    /// is only valid during the call.
    public func readData(chunk: Int = 1 << 16, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let a = handle else { return }
        var buf = [UInt8](repeating: 0, count: max(chunk, 512))
        while true {
            let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            if n < 0 { throw fail("read data") }
            if n == 0 { break }
            try buf.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    /// Closes the archive; a damaged end of stream surfaces here.
    public func finish() throws {
        guard let a = handle else { return }
        let rc = archive_read_close(a)
        let err = rc == ARCHIVE_OK ? nil : fail("close")
        archive_read_free(a)
        handle = nil
        if let err { throw err }
    }
}

/// Reads every member of an archive (any format and filter libarchive knows). A cpio stream of
/// several archives back to back (a multi-segment initrd) is read segment by segment: libarchive
/// stops at the first TRAILER!!!, the kernel does not.
public enum ArchiveReader {
    /// Calls `body` with each member's header and the stream its data can be read from
    /// (`stream.readData`); memory stays bounded whatever the archive holds. A cpio stream is first
    /// decompressed to an unlinked temporary file, at most `maxExpandedBytes` of it, to find its
    /// segments.
    public static func forEach(path: String, accepting: ArchiveStream.Accepting = .anything, maxExpandedBytes: Int64 = 64 << 30,
                               _ body: (ArchiveEntry, ArchiveStream) throws -> Void) throws {
        guard try startsWithCpio(path: path, accepting: accepting) else {
            let s = try ArchiveStream(path: path, accepting: accepting)
            while let e = try s.next() { try body(e, s) }
            try s.finish()
            return
        }
        let fd = try expandToTemporaryFile(path: path, accepting: accepting, limit: maxExpandedBytes)
        defer { close(fd) }
        let segments = cpioSegments(fd: fd)
        if segments.isEmpty {
            // Not (only) newc cpio: let libarchive read the file as it is.
            let s = try ArchiveStream(path: path, accepting: accepting)
            while let e = try s.next() { try body(e, s) }
            try s.finish()
            return
        }
        for start in segments {
            guard lseek(fd, off_t(start), SEEK_SET) == off_t(start) else {
                throw ArchiveError(path: path, operation: "seek", message: String(cString: strerror(errno)))
            }
            let s = try ArchiveStream(path: path, fd: fd, accepting: accepting)
            while let e = try s.next() { try body(e, s) }
            try s.finish()
        }
    }

    /// Every member with its data in memory: for archives known to be small (tests, nxc's own
    /// artefacts). Untrusted archives go through `forEach`.
    public static func entries(path: String, withData: Bool = true) throws -> [ArchiveEntry] {
        var out: [ArchiveEntry] = []
        try forEach(path: path) { e, s in
            var e = e
            if withData && e.kind == .file {
                try s.readData { e.data.append(contentsOf: $0) }
            }
            out.append(e)
        }
        return out
    }

    /// Whether the decompressed stream begins with a newc/odc cpio magic.
    static func startsWithCpio(path: String, accepting: ArchiveStream.Accepting) throws -> Bool {
        let raw = try RawStream(path: path, accepting: accepting)
        var head: [UInt8] = []
        try raw.read { chunk in
            head.append(contentsOf: chunk.prefix(6 - head.count))
            return head.count < 6
        }
        return head.starts(with: Array("07070".utf8))
    }

    /// Decompresses `path` into an unlinked temporary file (its descriptor is returned), refusing
    /// a stream that expands past `limit` bytes.
    static func expandToTemporaryFile(path: String, accepting: ArchiveStream.Accepting, limit: Int64) throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/nxc-archive-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { b in b.baseAddress.map { mkstemp($0) } ?? -1 }
        guard fd >= 0 else { throw ArchiveError(path: path, operation: "temporary file", message: String(cString: strerror(errno))) }
        // Unlinked at once: nothing is left behind whatever happens to this process.
        template.withUnsafeBufferPointer { b in _ = b.baseAddress.map { unlink($0) } }
        do {
            var total: Int64 = 0
            try RawStream(path: path, accepting: accepting).read { chunk in
                total += Int64(chunk.count)
                guard total <= limit else {
                    throw ArchiveError(path: path, operation: "decompress", message: "expands to more than \(limit) bytes; refusing it")
                }
                guard let base = chunk.baseAddress else { return true }
                var off = 0
                while off < chunk.count {
                    let n = write(fd, base + off, chunk.count - off)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw ArchiveError(path: path, operation: "write temporary file", message: String(cString: strerror(errno))) }
                    off += n
                }
                return true
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Start offsets of the newc archives in the decompressed stream `fd` (empty if it is not
    /// newc cpio throughout). Walks the headers only, reading no member data.
    static func cpioSegments(fd: Int32) -> [Int64] {
        func bytes(_ at: Int64, _ count: Int) -> [UInt8]? {
            var b = [UInt8](repeating: 0, count: count)
            let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(at)) }
            return n == count ? b : nil
        }
        func hex(_ b: ArraySlice<UInt8>) -> Int64? { Int64(String(decoding: b, as: UTF8.self), radix: 16) }
        func align4(_ n: Int64) -> Int64 { (n + 3) & ~3 }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        let size = Int64(st.st_size)
        var segments: [Int64] = []
        var o: Int64 = 0
        while true {
            // Zero padding between segments.
            while o < size {
                guard let b = bytes(o, Int(min(4096, size - o))) else { return [] }
                if let nz = b.firstIndex(where: { $0 != 0 }) { o += Int64(nz); break }
                o += Int64(b.count)
            }
            if o >= size { break }
            let start = o
            var ended = false
            while let h = bytes(o, 110), h[0..<5].elementsEqual("07070".utf8),
                  let fileSize = hex(h[54..<62]), let nameSize = hex(h[94..<102]), nameSize > 0, nameSize <= 4096 {
                let nameStart = o + 110
                guard let name = bytes(nameStart, Int(nameSize)) else { return [] }
                o = align4(align4(nameStart + nameSize) + fileSize)
                if name.prefix(Int(nameSize) - 1).elementsEqual("TRAILER!!!".utf8) { ended = true; break }
            }
            guard ended else { return [] }
            segments.append(start)
        }
        return segments
    }
}

extension ArchiveReader {
    /// The size of a compressed file once decompressed (every frame of a concatenation), read
    /// through without keeping it; stops at `limit` bytes.
    public static func decompressedSize(path: String, limit: Int = 64 << 30) throws -> Int {
        var total = 0
        try RawStream(path: path, accepting: .anything).read { chunk in
            total += chunk.count
            return total < limit
        }
        return total
    }

    /// The decompressed bytes of a file (zstd, gzip, xz, … or none), given in chunks of at most 1 MiB.
    public static func decompress(path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try RawStream(path: path, accepting: .anything).read { chunk in
            try body(chunk)
            return true
        }
    }
}

/// The decompressed bytes of a file, streamed (libarchive's raw format).
final class RawStream {
    let path: String
    private var handle: OpaquePointer?

    init(path: String, accepting: ArchiveStream.Accepting) throws {
        self.path = path
        guard let a = archive_read_new() else {
            throw ArchiveError(path: path, operation: "archive_read_new", message: "out of memory")
        }
        handle = a
        accepting.enable(a, formats: false)
        archive_read_support_format_raw(a)
        guard archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK else { throw fail("open") }
        var e: OpaquePointer?
        let rc = archive_read_next_header(a, &e)
        guard rc == ARCHIVE_OK || rc == ARCHIVE_EOF else { throw fail("read") }
    }

    deinit { if let h = handle { archive_read_free(h) } }

    private func fail(_ op: String) -> ArchiveError {
        ArchiveError(path: path, operation: op, message: handle.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error")
    }

    /// Gives chunks of at most 1 MiB to `body` until the end or until it returns false.
    func read(_ body: (UnsafeRawBufferPointer) throws -> Bool) throws {
        guard let a = handle else { return }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            if n < 0 { throw fail("decompress") }
            if n == 0 { return }
            guard try buf.withUnsafeBytes({ try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) else { return }
        }
    }
}
