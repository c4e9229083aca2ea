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
    public var data: [UInt8]
    /// Extended attributes (pax tar), by name.
    public var xattrs: [String: [UInt8]] = [:]
}

/// Reads every member of an archive (any format and filter libarchive knows). A cpio stream of
/// several archives back to back (a multi-segment initrd) is read segment by segment: libarchive
/// stops at the first TRAILER!!!, the kernel does not.
public enum ArchiveReader {
    public static func entries(path: String, withData: Bool = true) throws -> [ArchiveEntry] {
        let raw = try decompressed(path: path)
        let segments = cpioSegments(raw)
        if segments.isEmpty { return try read(path: path, memory: nil, withData: withData) }
        var out: [ArchiveEntry] = []
        for seg in segments {
            out += try read(path: path, memory: raw[seg], withData: withData)
        }
        return out
    }

    /// The whole stream with compression removed.
    static func decompressed(path: String) throws -> Data {
        guard let a = archive_read_new() else {
            throw ArchiveError(path: path, operation: "archive_read_new", message: "out of memory")
        }
        defer { archive_read_free(a) }
        archive_read_support_filter_all(a)
        archive_read_support_format_raw(a)
        func fail(_ op: String) -> ArchiveError {
            ArchiveError(path: path, operation: op, message: archive_error_string(a).map { String(cString: $0) } ?? "unknown error")
        }
        guard archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK else { throw fail("open") }
        var e: OpaquePointer?
        guard archive_read_next_header(a, &e) == ARCHIVE_OK else { throw fail("read") }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            if n < 0 { throw fail("decompress") }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        return data
    }

    /// Byte ranges of the newc archives in `raw` (empty if it is not newc cpio).
    static func cpioSegments(_ raw: Data) -> [Range<Int>] {
        let bytes = [UInt8](raw)
        func hex(_ at: Int) -> Int? {
            guard at + 8 <= bytes.count else { return nil }
            return Int(String(decoding: bytes[at..<at + 8], as: UTF8.self), radix: 16)
        }
        func align4(_ n: Int) -> Int { (n + 3) & ~3 }
        var segments: [Range<Int>] = []
        var o = 0
        while true {
            while o < bytes.count && bytes[o] == 0 { o += 1 }  // padding between segments
            if o >= bytes.count { break }
            let start = o
            var ended = false
            while o + 110 <= bytes.count, bytes[o..<o + 5].elementsEqual("07070".utf8),
                  let fileSize = hex(o + 54), let nameSize = hex(o + 94), nameSize > 0 {
                let nameStart = o + 110
                let nameEnd = min(bytes.count, nameStart + nameSize - 1)
                let name = String(decoding: bytes[min(nameStart, nameEnd)..<nameEnd], as: UTF8.self)
                o = align4(align4(nameStart + nameSize) + fileSize)
                if name == "TRAILER!!!" { ended = true; break }
            }
            guard ended else { return [] }  // not (only) newc cpio: let libarchive read the file as it is
            segments.append(start..<min(o, bytes.count))
        }
        return segments
    }

    static func read(path: String, memory: Data?, withData: Bool) throws -> [ArchiveEntry] {
        guard let a = archive_read_new() else {
            throw ArchiveError(path: path, operation: "archive_read_new", message: "out of memory")
        }
        defer { archive_read_free(a) }
        archive_read_support_filter_all(a)
        archive_read_support_format_all(a)
        func fail(_ op: String) -> ArchiveError {
            ArchiveError(path: path, operation: op, message: archive_error_string(a).map { String(cString: $0) } ?? "unknown error")
        }
        if let memory {
            let rc = memory.withUnsafeBytes { archive_read_open_memory(a, $0.baseAddress, $0.count) }
            guard rc == ARCHIVE_OK else { throw fail("open segment") }
            return try readEntries(a, withData: withData, fail: fail)
        }
        guard archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK else { throw fail("open") }
        return try readEntries(a, withData: withData, fail: fail)
    }

    static func readEntries(_ a: OpaquePointer, withData: Bool, fail: (String) -> ArchiveError) throws -> [ArchiveEntry] {
        var out: [ArchiveEntry] = []
        var e: OpaquePointer?
        while true {
            let rc = archive_read_next_header(a, &e)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = e else { throw fail("read header") }
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            let ft = UInt32(archive_entry_filetype(entry))
            let kind: ArchiveEntry.Kind
            switch ft {
            case NXC_AE_IFREG: kind = .file
            case NXC_AE_IFDIR: kind = .directory
            case NXC_AE_IFLNK: kind = .symlink
            case NXC_AE_IFCHR: kind = .characterDevice
            case NXC_AE_IFBLK: kind = .blockDevice
            case NXC_AE_IFIFO: kind = .fifo
            default: kind = .other
            }
            var data: [UInt8] = []
            if withData && kind == .file {
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                    if n < 0 { throw fail("read data of \(name)") }
                    if n == 0 { break }
                    data.append(contentsOf: buf[0..<n])
                }
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
            out.append(ArchiveEntry(path: name, kind: kind, mode: UInt32(archive_entry_perm(entry)),
                                    uid: archive_entry_uid(entry), gid: archive_entry_gid(entry),
                                    mtime: Int64(archive_entry_mtime(entry)),
                                    linkTarget: archive_entry_symlink(entry).map { String(cString: $0) },
                                    data: data, xattrs: xattrs))
        }
        return out
    }
}
