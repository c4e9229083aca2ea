import CArchive
import Foundation

/// Archive formats nxc writes.
public enum ArchiveFormat: Sendable {
    /// cpio "newc", the format of Linux initramfs.
    case cpioNewc
    /// POSIX pax tar (keeps extended attributes), used for tarballs and image layers.
    case pax
}

/// Compression of the archive stream. The kernel unpacks gzip and zstd initrds.
public enum ArchiveFilter: Sendable, Equatable {
    case none
    case gzip
    case zstd(level: Int)
}

/// Owns one libarchive write handle. Call `finish()` to complete the file; entries are
/// written in the order given (callers sort them for reproducible output).
public final class ArchiveWriter {
    private var handle: OpaquePointer?
    public let path: String
    private var nextInode: Int64 = 1
    /// Fixed modification time of every entry, for reproducible archives.
    public var mtime: Int64
    /// Extended attributes for the next entry (set by `addTree` when it keeps them).
    private var pendingXattrs: [(name: String, value: [UInt8])] = []

    public init(path: String, format: ArchiveFormat, filter: ArchiveFilter, mtime: Int64 = 0) throws {
        self.path = path
        self.mtime = mtime
        guard let h = archive_write_new() else {
            throw ArchiveError(path: path, operation: "archive_write_new", message: "out of memory")
        }
        handle = h
        switch format {
        case .cpioNewc: try check(archive_write_set_format_cpio_newc(h), "set format cpio newc")
        case .pax: try check(archive_write_set_format_pax_restricted(h), "set format pax")
        }
        switch filter {
        case .none: break
        case .gzip:
            try check(archive_write_add_filter_gzip(h), "add gzip filter")
            // No timestamp or name in the gzip header: byte-reproducible output.
            try check(archive_write_set_filter_option(h, "gzip", "timestamp", nil), "gzip without timestamp")
        case .zstd(let level):
            try check(archive_write_add_filter_zstd(h), "add zstd filter")
            try check(archive_write_set_filter_option(h, "zstd", "compression-level", String(level)), "zstd level")
        }
        // Pad to 512 bytes for tar; cpio needs no block padding (keeps concatenation simple).
        if format == .cpioNewc { try check(archive_write_set_bytes_in_last_block(h, 1), "last block") }
        try check(archive_write_open_filename(h, path), "open")
    }

    deinit {
        if let h = handle {
            archive_write_free(h)
        }
    }

    private func check(_ rc: Int32, _ op: String) throws {
        if rc == ARCHIVE_OK || rc == ARCHIVE_WARN { return }
        let msg = handle.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "error \(rc)"
        throw ArchiveError(path: path, operation: op, message: msg)
    }

    private func entry(_ name: String, type: UInt32, mode: UInt32, uid: Int64, gid: Int64, size: Int64) -> OpaquePointer? {
        guard let e = archive_entry_new() else { return nil }
        archive_entry_set_pathname(e, name)
        archive_entry_set_filetype(e, type)
        archive_entry_set_perm(e, mode_t(mode & 0o7777))
        archive_entry_set_uid(e, uid)
        archive_entry_set_gid(e, gid)
        archive_entry_set_size(e, size)
        archive_entry_set_mtime(e, time_t(mtime), 0)
        archive_entry_set_ino64(e, nextInode)
        nextInode += 1
        archive_entry_set_nlink(e, type == NXC_AE_IFDIR ? 2 : 1)
        for x in pendingXattrs {
            x.value.withUnsafeBytes { archive_entry_xattr_add_entry(e, x.name, $0.baseAddress, $0.count) }
        }
        pendingXattrs = []
        return e
    }

    private func writeHeader(_ e: OpaquePointer, _ name: String) throws {
        guard let h = handle else { throw ArchiveError(path: path, operation: "write", message: "archive already finished") }
        try check(archive_write_header(h, e), "write header of \(name)")
    }

    /// Archive member names have no leading '/'.
    static func member(_ path: String) -> String {
        var p = Substring(path)
        while p.hasPrefix("/") { p = p.dropFirst() }
        return p.isEmpty ? "." : String(p)
    }

    public func addDirectory(_ path: String, mode: UInt32 = 0o755, uid: Int64 = 0, gid: Int64 = 0) throws {
        let name = Self.member(path)
        guard let e = entry(name, type: NXC_AE_IFDIR, mode: mode, uid: uid, gid: gid, size: 0) else { return }
        defer { archive_entry_free(e) }
        try writeHeader(e, name)
    }

    public func addSymlink(_ path: String, target: String, uid: Int64 = 0, gid: Int64 = 0) throws {
        let name = Self.member(path)
        guard let e = entry(name, type: NXC_AE_IFLNK, mode: 0o777, uid: uid, gid: gid, size: 0) else { return }
        defer { archive_entry_free(e) }
        archive_entry_set_symlink(e, target)
        try writeHeader(e, name)
    }

    public func addDevice(_ path: String, character: Bool, major: UInt32, minor: UInt32, mode: UInt32,
                          uid: Int64 = 0, gid: Int64 = 0) throws {
        let name = Self.member(path)
        guard let e = entry(name, type: character ? NXC_AE_IFCHR : NXC_AE_IFBLK, mode: mode, uid: uid, gid: gid, size: 0) else { return }
        defer { archive_entry_free(e) }
        archive_entry_set_rdevmajor(e, dev_t(major))
        archive_entry_set_rdevminor(e, dev_t(minor))
        try writeHeader(e, name)
    }

    public func addFifo(_ path: String, mode: UInt32, uid: Int64 = 0, gid: Int64 = 0) throws {
        let name = Self.member(path)
        guard let e = entry(name, type: NXC_AE_IFIFO, mode: mode, uid: uid, gid: gid, size: 0) else { return }
        defer { archive_entry_free(e) }
        try writeHeader(e, name)
    }

    public func addFile(_ path: String, bytes: [UInt8], mode: UInt32 = 0o644, uid: Int64 = 0, gid: Int64 = 0) throws {
        let name = Self.member(path)
        guard let e = entry(name, type: NXC_AE_IFREG, mode: mode, uid: uid, gid: gid, size: Int64(bytes.count)) else { return }
        defer { archive_entry_free(e) }
        try writeHeader(e, name)
        try writeData(bytes[...], name)
    }

    private func writeData(_ bytes: ArraySlice<UInt8>, _ name: String) throws {
        guard let h = handle else { return }
        var off = bytes.startIndex
        while off < bytes.endIndex {
            let n = bytes[off...].withUnsafeBytes { buf in archive_write_data(h, buf.baseAddress, buf.count) }
            if n < 0 { try check(Int32(n), "write data of \(name)") }
            if n <= 0 { break }
            off += n
        }
    }

    /// Adds a regular file whose content is read from `source` on disk, streamed.
    public func addFile(_ path: String, contentsOf source: String, mode: UInt32, uid: Int64 = 0, gid: Int64 = 0) throws {
        let name = Self.member(path)
        var st = stat()
        guard stat(source, &st) == 0 else {
            throw ArchiveError(path: path, operation: "stat \(source)", message: String(cString: strerror(errno)))
        }
        guard let e = entry(name, type: NXC_AE_IFREG, mode: mode, uid: uid, gid: gid, size: Int64(st.st_size)) else { return }
        defer { archive_entry_free(e) }
        try writeHeader(e, name)
        let fd = open(source, O_RDONLY)
        guard fd >= 0 else {
            throw ArchiveError(path: path, operation: "open \(source)", message: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var remaining = Int(st.st_size)
        while remaining > 0 {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, remaining)) }
            if n <= 0 { break }
            try writeData(buf[0..<n], name)
            remaining -= n
        }
        if remaining > 0 {
            // The file shrank while we read it: pad, so the archive stays well-formed, and fail.
            try writeData(ArraySlice(repeating: 0, count: remaining), name)
            throw ArchiveError(path: path, operation: "read \(source)", message: "file changed while archiving")
        }
    }

    /// Adds the tree under `directory` (sorted, owners and modes from lstat, hard links as copies),
    /// with member names relative to it. `include` sees paths like "/usr/bin/ls" and may skip them.
    /// `xattrs`: keep extended attributes (file capabilities are `security.capability`), sorted by
    /// name; pax tar records them, cpio cannot.
    /// `ownership`: the record of a tree a normal user unpacked (TreeOwnership.unpack): owners,
    /// modes, device nodes and attributes come from it instead of from the files, and a path it does
    /// not know (made after unpacking) belongs to root.
    public func addTree(_ directory: String, xattrs: Bool = false, ownership: TreeOwnership? = nil,
                        include: (String) -> Bool = { _ in true }) throws {
        try walk(directory, "", xattrs, ownership, include)
    }

    /// The extended attributes of `path` (not following a symbolic link), sorted by name.
    public static func extendedAttributes(_ path: String) -> [(name: String, value: [UInt8])] {
        let size = llistxattr(path, nil, 0)
        guard size > 0 else { return [] }
        var names = [CChar](repeating: 0, count: size)
        let got = llistxattr(path, &names, size)
        guard got > 0 else { return [] }
        var out: [(String, [UInt8])] = []
        for raw in names[0..<got].split(separator: 0) {
            let name = String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let n = lgetxattr(path, name, nil, 0)
            guard n >= 0 else { continue }
            var value = [UInt8](repeating: 0, count: n)
            let m = n == 0 ? 0 : lgetxattr(path, name, &value, n)
            guard m >= 0 else { continue }
            out.append((name, Array(value.prefix(m))))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    private func walk(_ root: String, _ rel: String, _ xattrs: Bool, _ ownership: TreeOwnership?,
                      _ include: (String) -> Bool) throws {
        let dir = root + rel
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "/" : dir) else {
            throw ArchiveError(path: path, operation: "list \(dir)", message: "cannot read directory")
        }
        for n in names.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let r = rel + "/" + n
            guard include(r) else { continue }
            let full = root + r
            var st = stat()
            guard lstat(full, &st) == 0 else {
                throw ArchiveError(path: path, operation: "lstat \(full)", message: String(cString: strerror(errno)))
            }
            let type = st.st_mode & S_IFMT
            var mode = UInt32(st.st_mode & 0o7777)
            var uid = Int64(st.st_uid), gid = Int64(st.st_gid)
            var special: TreeOwnership.Special?
            if let ownership {
                let recorded = ownership.entries[r]
                uid = recorded?.uid ?? 0
                gid = recorded?.gid ?? 0
                mode = recorded?.mode ?? mode
                // A placeholder stands for the device node or fifo its user could not make.
                if type == S_IFREG, st.st_size == 0 { special = recorded?.special }
                pendingXattrs = xattrs ? (recorded?.xattrs ?? []).map { ($0.name, $0.value) } : []
            } else {
                pendingXattrs = xattrs ? Self.extendedAttributes(full) : []
            }
            switch special {
            case .characterDevice(let major, let minor)?:
                try addDevice(r, character: true, major: major, minor: minor, mode: mode, uid: uid, gid: gid)
                continue
            case .blockDevice(let major, let minor)?:
                try addDevice(r, character: false, major: major, minor: minor, mode: mode, uid: uid, gid: gid)
                continue
            case .fifo?:
                try addFifo(r, mode: mode, uid: uid, gid: gid)
                continue
            case nil:
                break
            }
            switch type {
            case S_IFDIR:
                try addDirectory(r, mode: mode, uid: uid, gid: gid)
                try walk(root, r, xattrs, ownership, include)
            case S_IFREG:
                try addFile(r, contentsOf: full, mode: mode, uid: uid, gid: gid)
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let len = readlink(full, &buf, buf.count - 1)
                guard len >= 0 else {
                    throw ArchiveError(path: path, operation: "readlink \(full)", message: String(cString: strerror(errno)))
                }
                buf[len] = 0
                try addSymlink(r, target: String(cString: buf), uid: uid, gid: gid)
            case S_IFCHR, S_IFBLK:
                let rdev = UInt64(st.st_rdev)
                let major = UInt32(((rdev >> 32) & 0xfffff000) | ((rdev >> 8) & 0xfff))
                let minor = UInt32(((rdev >> 12) & 0xffffff00) | (rdev & 0xff))
                try addDevice(r, character: type == S_IFCHR, major: major, minor: minor, mode: mode, uid: uid, gid: gid)
            case S_IFIFO:
                try addFifo(r, mode: mode, uid: uid, gid: gid)
            default:
                pendingXattrs = []
                continue // sockets are not archived
            }
        }
    }

    /// Completes the archive; errors from the compressor surface here.
    public func finish() throws {
        guard let h = handle else { return }
        let rc = archive_write_close(h)
        let msg = archive_error_string(h).map { String(cString: $0) } ?? "error \(rc)"
        archive_write_free(h)
        handle = nil
        if rc != ARCHIVE_OK && rc != ARCHIVE_WARN {
            throw ArchiveError(path: path, operation: "close", message: msg)
        }
    }
}
