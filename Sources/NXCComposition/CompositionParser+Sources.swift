import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NXCNames
import Yams

extension CompositionParser {
    /// Reads a `source:` file: a regular file inside the composition's folder once every symlink is
    /// resolved (a composition from elsewhere must not copy `/etc/shadow` or `~/.ssh/id_ed25519` into
    /// an image), within the size limits.
    mutating func readSource(_ src: String, _ node: Node, _ key: String) throws -> [UInt8] {
        let shown = DebianSource.shown(src)
        guard !src.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw fail(node, key, "source file '\(shown)' has a control character in its name")
        }
        guard !src.hasPrefix("/") else {
            throw fail(node, key, "source file '\(shown)' must be relative to the composition's folder, not an absolute path")
        }
        var depth = 0
        for part in src.split(separator: "/") where part != "." {
            depth += part == ".." ? -1 : 1
            if depth < 0 {
                throw fail(node, key, "source file '\(shown)' leads outside the composition's folder; copy the file into the folder")
            }
        }
        guard let folder = Self.realpath(directory) else { throw fail(node, key, "cannot resolve the composition's folder '\(directory)'") }
        guard let resolved = Self.realpath(directory + "/" + src) else {
            throw fail(node, key, "cannot read source file '\(shown)' (relative to the composition's folder): \(String(cString: strerror(errno)))")
        }
        guard resolved == folder || resolved.hasPrefix(folder == "/" ? "/" : folder + "/") else {
            throw fail(node, key, "source file '\(shown)' leads outside the composition's folder (to \(DebianSource.shown(resolved))); "
                       + "copy the file into the folder")
        }
        // O_NOFOLLOW: the path was just resolved; a symlink appearing now is refused, not followed.
        let fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            throw fail(node, key, "cannot read source file '\(shown)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw fail(node, key, "source file '\(shown)' is not a regular file")
        }
        guard st.st_size <= FileLimits.each else { throw fail(node, key, FileLimits.eachMessage(shown)) }
        let bytes: [UInt8]
        do { bytes = try BoundedRead.all(fd: fd, limit: FileLimits.each, path: src, what: "source file '\(shown)'") } catch {
            throw fail(node, key, (error as? YAMLLimitError)?.message ?? "cannot read source file '\(shown)'")
        }
        return try counted(bytes, node, key)
    }

    /// Adds a file's size to the composition's total, refusing either limit.
    mutating func counted(_ bytes: [UInt8], _ node: Node, _ key: String) throws -> [UInt8] {
        guard bytes.count <= FileLimits.each else { throw fail(node, key, FileLimits.eachMessage(nil)) }
        fileBytes += bytes.count
        guard fileBytes <= FileLimits.total else {
            throw fail(node, key, "the roles' files add up to more than \(FileLimits.total >> 20) MiB (the limit for all files of a composition)")
        }
        return bytes
    }

    static func realpath(_ path: String) -> String? {
        guard let p = Glibc.realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
