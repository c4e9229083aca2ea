import Foundation
import NXCDeployment
import NXCBuild

/// The driver's script: started with posix_spawn in a process group of its own (so that a timeout
/// reaches every process it started), stdin /dev/null, stdout and stderr on two pipes read here.
final class ScriptProcess {
    let pid: pid_t
    /// Read ends of stdout and stderr; -1 once closed.
    private var fds: [Int32]
    private var reaped = false

    init(argv: [String], environment: [String: String], directory: String) throws {
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        guard pipe(&out) == 0 else { throw DeployError.systemCall("pipe", errno: errno) }
        guard pipe(&err) == 0 else {
            for fd in out { close(fd) }
            throw DeployError.systemCall("pipe", errno: errno)
        }
        closeInheritedDescriptors()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        guard Self.addChdir(&actions, directory) == 0 else {
            for fd in out + err { close(fd) }
            throw DeployError.processFailed(argv[0], problem: "cannot run it in \(directory): posix_spawn cannot change folder here")
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Group 0: a new group whose id is the script's PID.
        posix_spawnattr_setpgroup(&attr, 0)
        cleanSignals(&attr, extraFlags: POSIX_SPAWN_SETPGROUP)
        var child: pid_t = 0
        let envList = environment.map { "\($0.key)=\($0.value)" }
        let rc = withCStrings(argv) { cargv in
            withCStrings(envList) { cenv in posix_spawn(&child, argv[0], &actions, &attr, cargv, cenv) }
        }
        close(out[1])
        close(err[1])
        guard rc == 0 else {
            close(out[0])
            close(err[0])
            throw DeployError.systemCall("posix_spawn", errno: rc, context: "starting \(argv[0])")
        }
        pid = child
        fds = [out[0], err[0]]
    }

    deinit {
        closeStreams()
        if !reaped {
            signalGroup(SIGKILL)
            var st: Int32 = 0
            _ = waitpid(pid, &st, WNOHANG)
        }
    }

    /// Feeds output to `streams` until the script exits (its status, 128+signal like a shell) or
    /// `deadline` passes (nil).
    func wait(until deadline: Date, feeding streams: [LineSplitter]) -> Int32? {
        while true {
            if !reaped {
                var st: Int32 = 0
                let w = waitpid(pid, &st, WNOHANG)
                if w == pid {
                    reaped = true
                    return (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
                }
                if w < 0 && errno != EINTR { reaped = true; return 127 }
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            if fds.contains(where: { $0 >= 0 }) {
                // Waits in poll for output, at most 100 ms, so that the exit is seen soon after.
                _ = readOnce(feeding: streams, waitMilliseconds: Int32(min(100, max(1, left * 1000))))
            } else {
                usleep(UInt32(min(50_000, max(1_000, left * 1e6))))
            }
        }
    }

    /// Reads what the pipes hold for up to `seconds`, without waiting for their writers to close them.
    func drain(feeding streams: [LineSplitter], for seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, fds.contains(where: { $0 >= 0 }) {
            if !readOnce(feeding: streams, waitMilliseconds: 50) { return }
        }
    }

    /// One poll of the open pipes; false when none had anything (or all are closed).
    private func readOnce(feeding streams: [LineSplitter], waitMilliseconds: Int32) -> Bool {
        var pfds = fds.filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard !pfds.isEmpty, poll(&pfds, nfds_t(pfds.count), waitMilliseconds) > 0 else { return false }
        var buf = [UInt8](repeating: 0, count: 65536)
        for p in pfds where p.revents != 0 {
            guard let i = fds.firstIndex(of: p.fd) else { continue }
            let n = read(p.fd, &buf, buf.count)
            if n > 0 {
                streams[i].feed(Data(buf[0..<n]))
            } else if n == 0 || errno != EINTR {
                close(p.fd)
                fds[i] = -1
            }
        }
        return true
    }

    func closeStreams() {
        for i in fds.indices where fds[i] >= 0 {
            close(fds[i])
            fds[i] = -1
        }
    }

    /// Signals every process of the script's group (ESRCH once they are all gone is fine).
    func signalGroup(_ sig: Int32) { _ = kill(-pid, sig) }

    /// `sig` to the group after `seconds`, unless the group is gone by then.
    func signalGroup(_ sig: Int32, after seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if kill(-pid, 0) != 0 && errno == ESRCH { return }
            usleep(50_000)
        }
        signalGroup(sig)
    }

    /// While the script runs, SIGINT, SIGTERM and SIGHUP sent to nxc (Ctrl-C, `timeout`, a closed
    /// terminal) go to the script's whole group, which no longer gets the terminal's signals
    /// itself; then nxc takes the signal's default action.
    final class SignalForwarding {
        nonisolated(unsafe) static var group: pid_t = 0
        private var previous: [Int32: sigaction] = [:]

        init() {
            Self.group = 0
            for sig in [SIGINT, SIGTERM, SIGHUP] {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { sig in
                    if SignalForwarding.group > 0 { kill(-SignalForwarding.group, sig) }
                    signal(sig, SIG_DFL)
                    raise(sig)
                }
                sigemptyset(&action.sa_mask)
                var old = sigaction()
                if sigaction(sig, &action, &old) == 0 { previous[sig] = old }
            }
        }

        func forward(to group: pid_t) { Self.group = group }

        func end() {
            Self.group = 0
            for (sig, old) in previous {
                var o = old
                sigaction(sig, &o, nil)
            }
        }
    }

    /// posix_spawn_file_actions_addchdir_np (glibc 2.29), which Swift's Glibc module does not export.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    nonisolated(unsafe) private static let addChdirFunction: AddChdir? =
        dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }

    private static func addChdir(_ actions: inout posix_spawn_file_actions_t, _ directory: String) -> Int32 {
        guard let f = addChdirFunction else { return ENOSYS }
        return f(&actions, directory)
    }
}

/// Steps and failures seen in the script's output.
final class StepCollector: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var steps: [Driver.Step] = []
    private let output: @Sendable (String) -> Void
    init(output: @escaping @Sendable (String) -> Void) { self.output = output }

    func stdout(_ line: String) { output(line) }

    func stderr(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        if line.hasPrefix(Driver.stepMark) {
            let command = String(line.dropFirst(Driver.stepMark.count))
            steps.append(Driver.Step(number: steps.count + 1, command: command))
            output("── step \(steps.count): \(command)")
        } else if line.hasPrefix(Driver.failureMark) {
            let node = line.dropFirst(Driver.failureMark.count).split(separator: " ").first.map(String.init) ?? "?"
            if !steps.isEmpty { steps[steps.count - 1].failedNodes.append(node) }
            output("!! \(node): " + line.dropFirst(Driver.failureMark.count + node.count).trimmingCharacters(in: .whitespaces))
        } else {
            output(line)
        }
    }
}
