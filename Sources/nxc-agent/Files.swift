import Glibc

/// File operations on plain paths, each failing with the path and errno.
enum Files {
    /// Documents larger than this are refused (a deployment is a few KiB).
    static let defaultLimit = 16 << 20

    /// The whole content of a file; /proc files (which report size 0) included.
    static func readBytes(_ path: String, limit: Int = defaultLimit) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var content: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return read(fd, base, raw.count)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw AgentError.io(path: path, operation: "read", errno: errno)
            }
            if count == 0 { return content }
            content.append(contentsOf: buffer[0..<count])
            if content.count > limit { throw AgentError.tooLarge(path: path, limit: limit) }
        }
    }

    /// The content of a file, or nil if it does not exist.
    static func readIfPresent(_ path: String, limit: Int = defaultLimit) throws -> [UInt8]? {
        do {
            return try readBytes(path, limit: limit)
        } catch AgentError.io(_, _, let code) where code == ENOENT || code == ENOTDIR {
            return nil
        }
    }

    /// A text file's content with surrounding whitespace removed, or nil if
    /// it is missing or unreadable (used for /sys attributes).
    static func readTrimmed(_ path: String) -> String? {
        guard let bytes = try? readBytes(path, limit: 65536) else { return nil }
        return String(decoding: bytes, as: UTF8.self).trimmed()
    }

    /// Whether something (a file, a directory, a dangling symlink) is at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The target of a symbolic link, or nil if `path` is not one.
    static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names in a directory, without "." and "..", sorted.
    static func list(_ path: String) throws -> [String] {
        guard let directory = opendir(path) else {
            throw AgentError.io(path: path, operation: "opendir", errno: errno)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// `mkdir -p`: the last directory, if created, gets `mode`; the ones
    /// above it 0755.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var current = path.hasPrefix("/") ? "" : "."
        let components = path.split(separator: "/")
        for (index, component) in components.enumerated() {
            current += "/" + component
            if mkdir(current, index == components.count - 1 ? mode : 0o755) != 0 {
                let code = errno
                guard code == EEXIST, isDirectory(current) else {
                    throw AgentError.io(path: current, operation: "mkdir", errno: code == EEXIST ? ENOTDIR : code)
                }
            }
        }
    }

    static func setMode(_ path: String, _ mode: mode_t) throws {
        guard chmod(path, mode) == 0 else { throw AgentError.io(path: path, operation: "chmod", errno: errno) }
    }

    /// What `write` did.
    enum WriteOutcome {
        case unchanged, replaced, overwrittenInPlace
    }

    /// Writes `bytes` to `path` atomically: a temporary file beside it, then
    /// rename, so a reader sees the old or the new content, never a part.
    /// A file with the same content is left alone (its mode is fixed).
    /// Containers bind-mount /etc/hosts and /etc/hostname, where rename fails
    /// with EBUSY: those are overwritten in place instead.
    @discardableResult
    static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws -> WriteOutcome {
        if let existing = try? readBytes(path), existing == bytes {
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & 0o7777 != mode { try setMode(path, mode) }
            return .unchanged
        }
        var content = bytes
        let code = try replace(path, mode: mode) { fd, temporary in
            let writeError = writeAll(fd, &content)
            if writeError != 0 { throw AgentError.io(path: temporary, operation: "write", errno: writeError) }
        }
        if code == 0 { return .replaced }
        guard code == EBUSY else { throw AgentError.io(path: path, operation: "rename onto", errno: code) }
        try overwrite(path, bytes)
        return .overwrittenInPlace
    }

    /// Writes `path` through a temporary file beside it: `fill` writes the content to its
    /// descriptor, then the mode is set, the data synced, and the file renamed into place. The
    /// temporary is removed on any failure. Returns 0, or the errno of a failed rename, for the
    /// caller to handle (EBUSY: a bind-mounted file).
    static func replace(_ path: String, mode: mode_t, _ fill: (Int32, String) throws -> Void) throws -> Int32 {
        let temporary = path + ".nxc-tmp.\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw AgentError.io(path: temporary, operation: "create", errno: errno) }
        var failure: (any Error)?
        do {
            try fill(fd, temporary)
            if fchmod(fd, mode) != 0 {
                failure = AgentError.io(path: temporary, operation: "chmod", errno: errno)
            } else if fsync(fd) != 0 {
                failure = AgentError.io(path: temporary, operation: "fsync", errno: errno)
            }
        } catch {
            failure = error
        }
        if close(fd) != 0, failure == nil {
            failure = AgentError.io(path: temporary, operation: "close", errno: errno)
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            return code
        }
        return 0
    }

    static func write(_ path: String, text: String, mode: mode_t = 0o644) throws {
        try write(path, Array(text.utf8), mode: mode)
    }

    private static func overwrite(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var content = bytes
        let code = writeAll(fd, &content)
        guard code == 0 else { throw AgentError.io(path: path, operation: "write", errno: code) }
    }

    /// Makes `path` a symbolic link to `target`, replacing what was there.
    static func symlink(_ path: String, to target: String) throws {
        if Glibc.symlink(target, path) == 0 { return }
        let code = errno
        guard code == EEXIST else { throw AgentError.io(path: path, operation: "symlink", errno: code) }
        if linkTarget(path) == target { return }
        guard unlink(path) == 0 else { throw AgentError.io(path: path, operation: "unlink", errno: errno) }
        guard Glibc.symlink(target, path) == 0 else {
            throw AgentError.io(path: path, operation: "symlink", errno: errno)
        }
    }

    /// Removes a file; a missing file is not an error.
    static func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw AgentError.io(path: path, operation: "unlink", errno: errno)
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and newlines.
    func trimmed() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
