import Foundation

/// What `start` launched, so that `status` and `stop` can find it by PID.
public struct RuntimeState: Codable, Sendable {
    public struct Process: Codable, Sendable {
        public var name: String
        public var pid: Int32
        /// The node it runs, nil for helpers such as the virtual switch.
        public var node: String?
        public var console: String?
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
    /// The container engine's project (compose project name and file), for `exec`, `status`, `stop`.
    public var project: ContainerProject?

    public struct ContainerProject: Codable, Sendable {
        public var name: String
        public var composeFile: String
        /// Container of each node.
        public var containers: [String: String]
        public init(name: String, composeFile: String, containers: [String: String]) {
            self.name = name
            self.composeFile = composeFile
            self.containers = containers
        }
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

/// Process helpers that act by PID only.
public enum Processes {
    public static func isAlive(_ pid: Int32) -> Bool { pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) }

    /// SIGTERM, then SIGKILL after `grace` seconds. Returns whether it is gone.
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

    /// Collects a zombie child of ours, if it is one.
    static func reap(_ pid: Int32) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }

    /// A free TCP port on 127.0.0.1 (the kernel picks; closed before use).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DeployError.invalid("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw DeployError.invalid("bind: \(String(cString: strerror(errno)))") }
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
