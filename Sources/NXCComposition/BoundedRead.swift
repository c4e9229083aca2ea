import Foundation

/// Reading a file descriptor up to a limit, for inputs whose size a header cannot be trusted for.
public enum BoundedRead {
    /// A regular file of at most `limit` bytes, as UTF-8 text: refuses what is not a regular file (a
    /// FIFO or /dev/zero would never end) and reads no more than the limit allows.
    public static func text(path: String, limit: Int, what: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw YAMLLimitError(file: path, "cannot read \(what): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw YAMLLimitError(file: path, "cannot read \(what): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw YAMLLimitError(file: path, "\(what) must be a regular file") }
        guard st.st_size <= limit else {
            throw YAMLLimitError(file: path, "\(what) is limited to \(YAMLLimits.describe(bytes: limit)); this one has \(st.st_size) bytes")
        }
        let bytes = try all(fd: fd, limit: limit, path: path, what: what)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw YAMLLimitError(file: path, "\(what) must be UTF-8 text")
        }
        return text
    }

    /// Every byte of `fd`; an error naming `path` when there are more than `limit`.
    public static func all(fd: Int32, limit: Int, path: String, what: String) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw YAMLLimitError(file: path, "cannot read \(what): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return out }
            guard out.count + n <= limit else {
                throw YAMLLimitError(file: path, "\(what) is limited to \(YAMLLimits.describe(bytes: limit)); this one has more")
            }
            out.append(contentsOf: chunk[0..<n])
        }
    }
}
