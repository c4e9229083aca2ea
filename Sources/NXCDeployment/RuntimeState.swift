import Foundation

/// What `start` launched, so that `status` and `stop` can find it by PID.
public struct RuntimeState: Codable, Sendable {
    public struct Process: Codable, Sendable {
        public var name: String
        public var pid: Int32
        /// The node it runs, nil for helpers such as the virtual switch.
        public var node: String?
        public var console: String?
        /// Who the PID was when it was recorded; nil in state files of older nxc versions, whose
        /// processes are therefore never signalled.
        public var identity: ProcessIdentity? = nil

        public init(name: String, pid: Int32, node: String?, console: String?, identity: ProcessIdentity? = nil) {
            self.name = name
            self.pid = pid
            self.node = node
            self.console = console
            self.identity = identity
        }

        /// "qemu of node server", "vde_switch".
        public var label: String { node.map { "\(name) of node \($0)" } ?? name }
    }

    public var composition: String
    public var flavour: String
    public var startMethod: String
    public var identity: SSHIdentity
    public var knownHosts: String
    public var startedAt: Date
    public var processes: [Process]
    /// The composition file started (for `nxc driver`'s default script).
    public var compositionFile: String?
    /// Node addresses the engine chose (containers), for `status`; the deployment has none.
    public var addresses: [String: String]?
    /// What each start method keeps of its own, by method name (`own(_:)`, `setOwn(_:)`).
    public var methods: [String: JSONValue]?
    /// Docker's own state in state files written before `methods` (read by `own`, never written).
    var project: JSONValue?

    public init(composition: String, flavour: String, startMethod: String, identity: SSHIdentity, knownHosts: String,
                startedAt: Date, processes: [Process], compositionFile: String? = nil, addresses: [String: String]? = nil) {
        self.composition = composition
        self.flavour = flavour
        self.startMethod = startMethod
        self.identity = identity
        self.knownHosts = knownHosts
        self.startedAt = startedAt
        self.processes = processes
        self.compositionFile = compositionFile
        self.addresses = addresses
    }

    public static func path(in runDirectory: String) -> String { runDirectory + "/state.json" }

    public func save(in runDirectory: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        enc.dateEncodingStrategy = .iso8601
        try writeAtomically(try enc.encode(self), to: Self.path(in: runDirectory))
    }

    public static func load(from runDirectory: String) -> RuntimeState? {
        guard let data = FileManager.default.contents(atPath: path(in: runDirectory)) else { return nil }
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .iso8601
        return try? dec.decode(RuntimeState.self, from: data)
    }
}

/// What tells a process apart from a later one that got the same PID (the kernel reuses PIDs, and
/// a reboot starts them over): when it started, in which boot, and its argv[0].
public struct ProcessIdentity: Codable, Sendable, Equatable {
    /// Clock ticks after boot (/proc/PID/stat, field 22).
    public var startTime: UInt64
    /// /proc/sys/kernel/random/boot_id when it was recorded.
    public var bootID: String
    /// argv[0] (/proc/PID/cmdline up to the first NUL).
    public var argv0: String

    /// The identity of `pid` now; nil if there is no such process.
    public static func of(_ pid: Int32) -> ProcessIdentity? {
        guard pid > 0, let stat = Processes.procStat(pid), let boot = Processes.bootID(),
              let cmdline = Processes.readSmallFile("/proc/\(pid)/cmdline") else { return nil }
        let argv0 = cmdline.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return ProcessIdentity(startTime: stat.startTime, bootID: boot, argv0: argv0)
    }
}

/// Process helpers that act by PID only.
public enum Processes {
    /// Whether a process runs with that PID: a zombie (exited, not yet reaped by its parent, which for
    /// a daemonized QEMU is PID 1) does not count.
    public static func isAlive(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) && procStat(pid)?.zombie != true
    }

    /// Whether a recorded process is still the one that was recorded.
    public enum Ownership: Equatable, Sendable {
        /// Same PID, start time, boot and argv[0].
        case ours
        /// No process has that PID any more (or only its zombie).
        case gone
        /// The PID now belongs to another process (reused, or from before a reboot).
        case notOurs
        /// A record without an identity (older state file) whose PID is in use.
        case unverifiable
    }

    public static func ownership(_ p: RuntimeState.Process) -> Ownership {
        guard let recorded = p.identity else { return isAlive(p.pid) ? .unverifiable : .gone }
        guard let stat = procStat(p.pid), !stat.zombie, let now = ProcessIdentity.of(p.pid) else { return .gone }
        return now == recorded ? .ours : .notOurs
    }

    /// For `status` and start's already-running check: a verified process, or (older state files)
    /// a live PID.
    public static func isRunning(_ p: RuntimeState.Process) -> Bool {
        let o = ownership(p)
        return o == .ours || o == .unverifiable
    }

    public enum StopOutcome: Equatable, Sendable {
        case stopped
        case gone
        /// Not signalled: the PID is not (or cannot be shown to be) the recorded process.
        case notSignalled(Ownership)
        /// Still there after SIGKILL.
        case failed
    }

    /// SIGTERM, then SIGKILL after `grace` seconds, only while the process is the one recorded.
    /// The PID is pinned with a pidfd before the check where the kernel has them, so that the
    /// signal cannot reach a process that took the PID between the check and the kill.
    public static func stop(_ p: RuntimeState.Process, grace: Double = 10) -> StopOutcome {
        guard p.pid > 0 else { return .gone }
        let pidfd = Pidfd.open(p.pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        if pidfd < 0 && errno == ESRCH { return .gone }
        switch ownership(p) {
        case .gone: return .gone
        case .notOurs: return .notSignalled(.notOurs)
        case .unverifiable: return .notSignalled(.unverifiable)
        case .ours: break
        }
        func send(_ sig: Int32) -> Bool {
            if pidfd >= 0 { return Pidfd.sendSignal(pidfd, sig) == 0 || errno != ESRCH }
            return kill(p.pid, sig) == 0 || errno != ESRCH
        }
        func exited(within seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            repeat {
                reap(p.pid)
                if pidfd >= 0 {
                    // A pidfd becomes readable when its process has terminated.
                    var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                    if poll(&pfd, 1, 100) > 0 { reap(p.pid); return true }
                } else {
                    if ownership(p) == .gone { return true }
                    usleep(100_000)
                }
            } while Date() < deadline
            return false
        }
        guard send(SIGTERM) else { return .gone }
        if exited(within: grace) { return .stopped }
        guard send(SIGKILL) else { return .stopped }
        return exited(within: 5) ? .stopped : .failed
    }

    /// SIGTERM, then SIGKILL after `grace` seconds, by PID alone: for a child this process started
    /// and has not reaped, whose PID cannot have been reused. A PID read back from a file goes
    /// through `stop(_: RuntimeState.Process)`. Returns whether it is gone.
    @discardableResult
    public static func stop(_ pid: Int32, grace: Double = 10) -> Bool {
        guard isAlive(pid) else { return true }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline {
            reap(pid)
            if !isAlive(pid) { return true }
            usleep(100_000)
        }
        kill(pid, SIGKILL)
        let hard = Date().addingTimeInterval(5)
        while Date() < hard {
            reap(pid)
            if !isAlive(pid) { return true }
            usleep(100_000)
        }
        return false
    }

    /// State (zombie or not) and start time from /proc/PID/stat.
    static func procStat(_ pid: Int32) -> (zombie: Bool, startTime: UInt64)? {
        guard let data = readSmallFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        // The command name (field 2) is in parentheses and may hold spaces and ')': fields 3… follow the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let start = UInt64(fields[19]) else { return nil }
        return (fields[0] == "Z" || fields[0] == "X", start)
    }

    static func bootID() -> String? {
        readSmallFile("/proc/sys/kernel/random/boot_id").map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// Reads a /proc file (their size reads as 0, so read to the end).
    static func readSmallFile(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < 1 << 20 {
            let n = read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Collects a zombie child of ours, if it is one.
    static func reap(_ pid: Int32) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }

    /// A free TCP port on 127.0.0.1 (the kernel picks; closed before use).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DeployError.systemCall("socket", errno: errno) }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw DeployError.systemCall("bind", errno: errno) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func portInUse(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return rc != 0
    }

    /// Reads an SSH banner ("SSH-2.0-…") from 127.0.0.1-style endpoints within `timeout` seconds.
    public static func sshBanner(host: String, port: Int, timeout: Double = 3) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return nil }
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { return nil }
        var buf = [UInt8](repeating: 0, count: 256)
        let n = read(fd, &buf, buf.count)
        guard n > 0 else { return nil }
        let s = String(decoding: buf[0..<n], as: UTF8.self)
        return s.hasPrefix("SSH-") ? s.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }
}

/// pidfd_open(2) and pidfd_send_signal(2), looked up at run time: Swift's Glibc module does not
/// export them, and an older libc or kernel may lack them (then callers fall back to kill(2)).
enum Pidfd {
    private typealias OpenFunction = @convention(c) (pid_t, UInt32) -> Int32
    private typealias SendSignalFunction = @convention(c) (Int32, Int32, UnsafeMutableRawPointer?, UInt32) -> Int32
    nonisolated(unsafe) private static let openFunction: OpenFunction? =
        dlsym(nil, "pidfd_open").map { unsafeBitCast($0, to: OpenFunction.self) }
    nonisolated(unsafe) private static let sendSignalFunction: SendSignalFunction? =
        dlsym(nil, "pidfd_send_signal").map { unsafeBitCast($0, to: SendSignalFunction.self) }

    /// A pidfd for `pid`, or -1 with errno set (ENOSYS where unavailable).
    static func open(_ pid: Int32) -> Int32 {
        guard let f = openFunction, sendSignalFunction != nil else { errno = ENOSYS; return -1 }
        return f(pid, 0)
    }

    static func sendSignal(_ fd: Int32, _ sig: Int32) -> Int32 {
        guard let f = sendSignalFunction else { errno = ENOSYS; return -1 }
        return f(fd, sig, nil, 0)
    }
}
