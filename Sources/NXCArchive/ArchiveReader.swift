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
}

/// Reads every member of an archive (any format and filter libarchive knows), including
/// concatenated archives such as a multi-segment initrd.
public enum ArchiveReader {
    public static func entries(path: String, withData: Bool = true) throws -> [ArchiveEntry] {
        guard let a = archive_read_new() else {
            throw ArchiveError(path: path, operation: "archive_read_new", message: "out of memory")
        }
        defer { archive_read_free(a) }
        archive_read_support_filter_all(a)
        archive_read_support_format_all(a)
        // Initrds are several archives back to back.
        archive_read_set_options(a, "read_concatenated_archives")
        func fail(_ op: String) -> ArchiveError {
            ArchiveError(path: path, operation: op, message: archive_error_string(a).map { String(cString: $0) } ?? "unknown error")
        }
        guard archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK else { throw fail("open") }
        var out: [ArchiveEntry] = []
        var e: OpaquePointer?
        while true {
            let rc = archive_read_next_header(a, &e)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = e else { throw fail("read header") }
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            if name == "TRAILER!!!" { continue }
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
            out.append(ArchiveEntry(path: name, kind: kind, mode: UInt32(archive_entry_perm(entry)),
                                    uid: archive_entry_uid(entry), gid: archive_entry_gid(entry),
                                    mtime: Int64(archive_entry_mtime(entry)),
                                    linkTarget: archive_entry_symlink(entry).map { String(cString: $0) },
                                    data: data))
        }
        return out
    }
}
