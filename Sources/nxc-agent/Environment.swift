import Glibc

/// The file system the agent works on.
///
/// Every system path the agent touches (/proc/cmdline, /proc/1/environ,
/// /sys/class/net, /etc, /run, /root, /dev/kmsg) goes through `path(_:)`.
/// For tests only, the environment variable `NXC_AGENT_ROOT=/some/dir`
/// prefixes all of them with that directory, and the agent then changes
/// nothing on the running system: sethostname, ip, ssh-keygen and systemctl
/// are logged as "would run ..." instead of being done. Paths given
/// explicitly (`--deployment FILE`, `$NXC_DEPLOYMENT_FILE`, the generator's
/// output directories) are used as given.
struct SystemRoot {
    /// Prepended to every absolute system path; empty on a real node.
    let prefix: String
    /// True when NXC_AGENT_ROOT is set: act on files only, never on the system.
    let isTest: Bool

    static func fromEnvironment() -> SystemRoot {
        guard let value = environmentVariable("NXC_AGENT_ROOT"), !value.isEmpty else {
            return SystemRoot(prefix: "", isTest: false)
        }
        var prefix = value
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return SystemRoot(prefix: prefix, isTest: true)
    }

    /// `absolute` (which starts with "/") as seen under this root.
    func path(_ absolute: String) -> String { prefix + absolute }
}

/// The value of a variable of this process's environment, if set.
func environmentVariable(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// Writes all of `text` to a file descriptor, unbuffered, so log lines and
/// the output of the programs the agent starts stay in order.
func writeAll(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    _ = writeAll(fd, &bytes)
}

/// Writes all of `bytes`; returns 0 or the errno of the failed write.
@discardableResult
func writeAll(_ fd: Int32, _ bytes: inout [UInt8]) -> Int32 {
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return write(fd, base + written, buffer.count - written)
        }
        if count < 0 {
            if errno == EINTR { continue }
            return errno
        }
        if count == 0 { return EIO }
        written += count
    }
    return 0
}

/// Log lines: on standard output for `boot` (systemd puts them in the
/// journal), on /dev/kmsg for the generator (journald does not run yet when
/// generators do); if /dev/kmsg cannot be opened, on standard error.
struct Logger {
    enum Sink {
        case standardOutput
        case kernelLog(path: String)
    }

    let program: String
    let sink: Sink

    func info(_ message: String) { emit(priority: 6, message) }
    func warning(_ message: String) { emit(priority: 4, "warning: " + message) }
    func error(_ message: String) { emit(priority: 4, "error: " + message) }

    private func emit(priority: Int, _ message: String) {
        // One line per message: a newline inside would forge another log line.
        let flat = String(message.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        switch sink {
        case .standardOutput:
            writeAll(priority <= 4 ? 2 : 1, "\(program): \(flat)\n")
        case let .kernelLog(path):
            let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY)
            if fd >= 0 {
                writeAll(fd, "<\(priority)>\(program): \(flat)\n")
                close(fd)
            } else {
                writeAll(2, "\(program): \(flat)\n")
            }
        }
    }
}
