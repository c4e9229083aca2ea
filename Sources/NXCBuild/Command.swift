import Foundation

/// A failure to run a program, with its argv and what it printed.
public struct CommandError: Error, CustomStringConvertible, Sendable {
    public var argv: [String]
    public var status: Int32
    public var output: String
    public var timedOut: Bool = false

    public var description: String {
        let cmd = argv.prefix(3).joined(separator: " ") + (argv.count > 3 ? " …" : "")
        if timedOut { return "\(cmd) did not finish in time" }
        let tail = output.split(separator: "\n").suffix(15).joined(separator: "\n")
        return "\(cmd) failed with exit status \(status)" + (tail.isEmpty ? "" : ":\n\(tail)")
    }
}

/// Runs programs from an argv array (never through a shell), with an explicit environment and a timeout.
public enum Command {
    /// Resolves a program name on PATH.
    public static func which(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs `argv` to completion; output (stdout+stderr) is captured, and also appended to `log` if given.
    /// Throws `CommandError` on a non-zero exit or when `timeout` seconds pass (the process is killed).
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String]? = nil,
                           log: String? = nil, timeout: Double = 3600, input: Data? = nil,
                           inputFile: String? = nil) throws -> String {
        let (status, out) = try status(argv, environment: environment, log: log,
                                       timeout: timeout, input: input, inputFile: inputFile)
        if status != 0 { throw CommandError(argv: argv, status: status, output: out) }
        return out
    }

    /// Like `run`, but returns the exit status instead of throwing on failure.
    /// Children start with an empty signal mask and default handlers, with only stdin/stdout/stderr open,
    /// so daemons they fork (QEMU -daemonize, vde_switch) neither inherit our pipes nor ignore SIGTERM.
    public static func status(_ argv: [String], environment: [String: String]? = nil,
                              log: String? = nil, timeout: Double = 3600, input: Data? = nil,
                              inputFile: String? = nil, onOutput: (@Sendable (Data) -> Void)? = nil) throws -> (Int32, String) {
        guard let exe = which(argv[0], path: environment?["PATH"] ?? ProcessInfo.processInfo.environment["PATH"]) else {
            throw CommandError(argv: argv, status: 127, output: "\(argv[0]): command not found")
        }
        ChildSignals.install()
        let collector = OutputCollector(logPath: log)
        var outPipe: [Int32] = [-1, -1]
        var inPipe: [Int32] = [-1, -1]
        guard cloexecPipe(&outPipe), input == nil || cloexecPipe(&inPipe) else {
            throw CommandError(argv: argv, status: -1, output: "pipe: \(String(cString: strerror(errno)))")
        }
        closeInheritedDescriptors()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        } else if let inputFile {
            posix_spawn_file_actions_addopen(&actions, 0, inputFile, O_RDONLY, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        cleanSignals(&attr)
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cargv in
            withCStrings(env) { cenv in posix_spawn(&pid, exe, &actions, &attr, cargv, cenv) }
        }
        close(outPipe[1])
        if input != nil { close(inPipe[0]) }
        let slot = rc == 0 ? ChildSignals.register(pid) : nil
        defer { ChildSignals.unregister(slot) }
        guard rc == 0 else {
            close(outPipe[0])
            if input != nil { close(inPipe[1]) }
            throw CommandError(argv: argv, status: 127, output: "\(exe): \(String(cString: strerror(rc)))")
        }
        if let input {
            input.withUnsafeBytes { buf in
                var off = 0
                while off < buf.count {
                    let n = write(inPipe[1], buf.baseAddress! + off, buf.count - off)
                    if n <= 0 { break }
                    off += n
                }
            }
            close(inPipe[1])
        }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var exited = false
        var timedOut = false
        var buf = [UInt8](repeating: 0, count: 65536)
        var eof = false
        while !exited {
            if !eof {
                var pfd = pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 50) > 0 {
                    let n = read(outPipe[0], &buf, buf.count)
                    if n > 0 {
                        let chunk = Data(buf[0..<n])
                        collector.append(chunk)
                        onOutput?(chunk)
                    } else { eof = true }
                }
            } else {
                usleep(20_000)
            }
            let w = waitpid(pid, &status, WNOHANG)
            if w == pid { exited = true; break }
            if w < 0 && errno != EINTR { exited = true; break }
            if Date() > deadline {
                timedOut = true
                kill(pid, SIGTERM)
                let grace = Date().addingTimeInterval(5)
                while Date() < grace, waitpid(pid, &status, WNOHANG) == 0 { usleep(50_000) }
                if waitpid(pid, &status, WNOHANG) == 0 {
                    kill(pid, SIGKILL)
                    waitpid(pid, &status, 0)
                }
                break
            }
        }
        // A daemon forked by the child may hold the pipe open: drain what is there, never wait for EOF.
        drain(outPipe[0], into: collector, onOutput: onOutput)
        close(outPipe[0])
        let out = collector.text
        if timedOut { throw CommandError(argv: argv, status: -1, output: out, timedOut: true) }
        // Exit status, or 128+signal like a shell.
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, out)
    }
}

extension Command {
    /// Runs `argv` attached to this process's stdin, stdout and stderr (a terminal stays its
    /// terminal: interactive ssh, docker exec -it, tmux attach) and returns its exit status, or
    /// 128+signal. Like `status`, the child starts with a clean signal mask and default handlers,
    /// and SIGINT, SIGTERM and SIGHUP sent to nxc are passed on to it.
    public static func runAttached(_ argv: [String], environment: [String: String]? = nil) throws -> Int32 {
        guard let exe = which(argv[0], path: environment?["PATH"] ?? ProcessInfo.processInfo.environment["PATH"]) else {
            throw CommandError(argv: argv, status: 127, output: "\(argv[0]): command not found")
        }
        ChildSignals.install()
        closeInheritedDescriptors()
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        cleanSignals(&attr)
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cargv in
            withCStrings(env) { cenv in posix_spawn(&pid, exe, nil, &attr, cargv, cenv) }
        }
        guard rc == 0 else { throw CommandError(argv: argv, status: 127, output: "\(exe): \(String(cString: strerror(rc)))") }
        let slot = ChildSignals.register(pid)
        defer { ChildSignals.unregister(slot) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

/// Spawn attributes for every child: an empty signal mask and default handlers, whatever nxc
/// (or the runtime) blocks or ignores. `extraFlags`: other POSIX_SPAWN_* flags the caller sets
/// attributes for (POSIX_SPAWN_SETPGROUP, say).
public func cleanSignals(_ attr: inout posix_spawnattr_t, extraFlags: Int32 = 0) {
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for sig in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, sig) }
    posix_spawnattr_setsigdefault(&attr, &defaults)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | extraFlags))
}

/// The children nxc is waiting for, so that SIGINT, SIGTERM and SIGHUP sent to nxc (Ctrl-C,
/// `timeout`, a closed terminal) reach them too: a child of a killed nxc must not go on alone.
/// The slots are a fixed C array: the handler only reads it and calls kill(2), both safe in a handler.
public enum ChildSignals {
    static let capacity = 512
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<pid_t> = {
        let p = UnsafeMutablePointer<pid_t>.allocate(capacity: capacity)
        p.initialize(repeating: 0, count: capacity)
        return p
    }()
    static let lock = NSLock()
    nonisolated(unsafe) static var installed = false

    /// Installs the forwarding handlers once.
    public static func install() {
        lock.lock()
        defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        _ = slots
        for sig in [SIGINT, SIGTERM, SIGHUP] { signal(sig, forwardSignal) }
    }

    static func register(_ pid: pid_t) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<capacity where slots[i] == 0 {
            slots[i] = pid
            return i
        }
        return nil
    }

    static func unregister(_ slot: Int?) {
        guard let slot else { return }
        lock.lock()
        slots[slot] = 0
        lock.unlock()
    }
}

/// Passes the signal on to every child nxc waits for, then takes its default action on nxc.
private func forwardSignal(_ sig: Int32) {
    for i in 0..<ChildSignals.capacity {
        let pid = ChildSignals.slots[i]
        if pid > 0 { kill(pid, sig) }
    }
    signal(sig, SIG_DFL)
    raise(sig)
}

/// Marks every descriptor above stderr close-on-exec, so children get only stdin/stdout/stderr.
/// What nxc itself inherited (make's jobserver pipes, a test runner's files) would otherwise leak
/// into every child; dash then fails on scripts whose redirections need fd numbers above 9.
/// Marks every descriptor above 2 close-on-exec, so that a child gets only what its spawn actions give it.
public func closeInheritedDescriptors() {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
    for n in names {
        guard let fd = Int32(n), fd > 2 else { continue }
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }
}

func cloexecPipe(_ fds: inout [Int32]) -> Bool {
    guard pipe(&fds) == 0 else { return false }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return true
}

/// Calls `body` with a NULL-terminated C array of the strings.
/// Calls `body` with a NULL-terminated C array of the strings (argv, envp).
public func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Reads what a pipe holds within a short grace period, without waiting for its writers to close it.
func drain(_ fd: Int32, into collector: OutputCollector, onOutput: (@Sendable (Data) -> Void)? = nil) {
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 100) > 0 else { return }
        let n = read(fd, &buf, buf.count)
        if n <= 0 { return }
        let chunk = Data(buf[0..<n])
        collector.append(chunk)
        onOutput?(chunk)
    }
}

/// Collects a child's output from the pipe's handler thread.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let log: FileHandle?

    init(logPath: String?) {
        if let logPath {
            FileManager.default.createFile(atPath: logPath, contents: nil)
            log = FileHandle(forWritingAtPath: logPath)
        } else {
            log = nil
        }
    }

    deinit { try? log?.close() }

    func append(_ d: Data) {
        guard !d.isEmpty else { return }
        lock.lock()
        data.append(d)
        log?.write(d)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
