import Foundation

/// The test binary run again as a child for one test (the child half reads its environment).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var reaped = false
    public private(set) var status: Int32 = 0

    private init(pid: pid_t) { self.pid = pid }

    public static func spawnSelf(test: String, environment extra: [String: String]) throws -> ChildProcess {
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let argv = [exe, test]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cargv = argv.map { strdup($0) } + [nil]
        let cenv = envStrings.map { strdup($0) } + [nil]
        defer { for p in cargv + cenv { free(p) } }
        let rc = posix_spawn(&pid, exe, &actions, nil, cargv, cenv)
        guard rc == 0 else { throw NSError(domain: "posix_spawn", code: Int(rc)) }
        return ChildProcess(pid: pid)
    }

    public var isRunning: Bool { !reap(block: false) }

    /// Waits up to `timeout` seconds; false if the child still runs (then it is killed).
    @discardableResult
    public func wait(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if reap(block: false) { return true }
            usleep(20_000)
        }
        stop()
        return false
    }

    /// SIGKILL and reap; nothing if it already exited.
    public func stop() {
        guard !reaped else { return }
        kill(pid, SIGKILL)
        _ = reap(block: true)
    }

    private func reap(block: Bool) -> Bool {
        if reaped { return true }
        var st: Int32 = 0
        let r = waitpid(pid, &st, block ? 0 : WNOHANG)
        guard r == pid else { return false }
        reaped = true
        status = st
        return true
    }
}
