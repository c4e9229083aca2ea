import CArchive
import Foundation

extension TreeOwnership {
    /// Unpacks the tar `archive` into the existing folder `directory` as the calling user and returns
    /// the record of what the files there cannot keep. Every file lands owned by the caller, with the
    /// owner's read and write bits (and search, for folders), so that the caller can read, change and
    /// delete the whole tree later without any privilege; owners, set-id and sticky bits, device nodes
    /// and fifos (empty placeholder files on disk) and extended attributes live in the record only.
    /// Members with an absolute name or a '..' component are refused, and nothing is written through a
    /// symbolic link; sockets are skipped.
    public static func unpack(archive: String, into directory: String) throws -> TreeOwnership {
        guard let resolved = realpath(directory, nil) else {
            throw ArchiveError(path: directory, operation: "unpack \(archive)", message: String(cString: strerror(errno)))
        }
        // No symbolic link in the prefix: the secure-symlinks check walks the whole path.
        let base = String(cString: resolved)
        free(resolved)
        guard let reader = archive_read_new() else {
            throw ArchiveError(path: archive, operation: "archive_read_new", message: "out of memory")
        }
        defer { archive_read_free(reader) }
        archive_read_support_filter_all(reader)
        archive_read_support_format_tar(reader)
        func readFailure(_ op: String) -> ArchiveError {
            ArchiveError(path: archive, operation: op, message: archive_error_string(reader).map { String(cString: $0) } ?? "unknown error")
        }
        guard archive_read_open_filename(reader, archive, 1 << 16) == ARCHIVE_OK else { throw readFailure("open") }
        guard let disk = archive_write_disk_new() else {
            throw ArchiveError(path: directory, operation: "archive_write_disk_new", message: "out of memory")
        }
        defer { archive_write_free(disk) }
        // Modes as adjusted below, never owners (a normal user cannot chown), no attributes (the record has them).
        archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT)
        func writeFailure(_ op: String) -> ArchiveError {
            ArchiveError(path: directory, operation: op, message: archive_error_string(disk).map { String(cString: $0) } ?? "unknown error")
        }

        var record = TreeOwnership()
        var e: OpaquePointer?
        while true {
            let rc = archive_read_next_header(reader, &e)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry = e else { throw readFailure("read header") }
            guard let name = (archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry)).map({ String(cString: $0) }) else {
                throw readFailure("read a member name")
            }
            guard let rel = relativeMember(name) else {
                throw ArchiveError(path: archive, operation: "unpack", message: "member '\(name)' would land outside \(directory)")
            }
            let type = UInt32(archive_entry_filetype(entry))
            var special: Special?
            switch type {
            case NXC_AE_IFCHR:
                special = .characterDevice(major: UInt32(archive_entry_rdevmajor(entry)), minor: UInt32(archive_entry_rdevminor(entry)))
            case NXC_AE_IFBLK:
                special = .blockDevice(major: UInt32(archive_entry_rdevmajor(entry)), minor: UInt32(archive_entry_rdevminor(entry)))
            case NXC_AE_IFIFO:
                special = .fifo
            case NXC_AE_IFSOCK:
                continue
            default:
                break
            }
            let perm = UInt32(archive_entry_perm(entry))
            record.entries["/" + rel] = Entry(uid: archive_entry_uid(entry), gid: archive_entry_gid(entry), mode: perm,
                                              special: special, xattrs: extendedAttributes(of: entry))
            if rel.isEmpty { continue } // the folder itself
            archive_entry_set_pathname(entry, base + "/" + rel)
            if let target = archive_entry_hardlink(entry).map({ String(cString: $0) }) {
                guard let t = relativeMember(target), !t.isEmpty else {
                    throw ArchiveError(path: archive, operation: "unpack", message: "hard link '\(name)' points outside \(directory): '\(target)'")
                }
                archive_entry_set_hardlink(entry, base + "/" + t)
            }
            var diskPerm = perm & 0o777
            if special != nil {
                archive_entry_set_filetype(entry, NXC_AE_IFREG)
                archive_entry_set_size(entry, 0)
                archive_entry_set_rdev(entry, 0)
                diskPerm = 0o600
            } else if type == NXC_AE_IFDIR {
                diskPerm |= 0o700
            } else if type == NXC_AE_IFREG {
                diskPerm |= 0o600
            }
            archive_entry_set_perm(entry, mode_t(diskPerm))
            archive_entry_xattr_clear(entry)
            let wrc = archive_write_header(disk, entry)
            guard wrc == ARCHIVE_OK || wrc == ARCHIVE_WARN else { throw writeFailure("write \(rel)") }
            if type == NXC_AE_IFREG {
                var buf: UnsafeRawPointer?
                var size = 0
                var offset: la_int64_t = 0
                while true {
                    let r = archive_read_data_block(reader, &buf, &size, &offset)
                    if r == ARCHIVE_EOF { break }
                    guard r == ARCHIVE_OK || r == ARCHIVE_WARN else { throw readFailure("read data of \(name)") }
                    guard archive_write_data_block(disk, buf, size, offset) >= ARCHIVE_WARN else { throw writeFailure("write data of \(rel)") }
                }
            }
            guard archive_write_finish_entry(disk) >= ARCHIVE_WARN else { throw writeFailure("finish \(rel)") }
        }
        // Folder modes are set at the end (a folder is written into before it gets its mode).
        guard archive_write_close(disk) >= ARCHIVE_WARN else { throw writeFailure("close") }
        return record
    }

    /// "./usr/bin/ls" → "usr/bin/ls", "./" → "", nil for an absolute name or one with '..'.
    static func relativeMember(_ name: String) -> String? {
        if name.hasPrefix("/") { return nil }
        var parts: [Substring] = []
        for p in name.split(separator: "/", omittingEmptySubsequences: true) where p != "." {
            if p == ".." { return nil }
            parts.append(p)
        }
        return parts.joined(separator: "/")
    }

    static func extendedAttributes(of entry: OpaquePointer) -> [ExtendedAttribute] {
        // libarchive's pax writer stores each attribute twice (LIBARCHIVE.xattr and SCHILY.xattr): one per name.
        var byName: [String: [UInt8]] = [:]
        guard archive_entry_xattr_reset(entry) > 0 else { return [] }
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK, let name {
            byName[String(cString: name)] = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
        }
        return byName.map { ExtendedAttribute(name: $0.key, value: $0.value) }
    }
}
