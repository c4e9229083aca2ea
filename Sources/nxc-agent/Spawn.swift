import Glibc

/// Runs programs with posix_spawn from an argv array: no shell, a fixed
/// environment, standard input from /dev/null, standard output and error
/// shared with the agent (so they land in the journal beside its lines), and
/// a deadline after which the child is terminated, then killed, by its PID.
enum Spawn {
    /// Where programs are looked up; fixed so the result does not depend on
    /// the environment systemd or a container engine gave the agent.
    static let searchPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    static let environment = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL=C",
        "SYSTEMD_PAGER=",
    ]

    /// Runs `argv` and waits at most `timeout` seconds; throws unless it exits 0.
    static func run(_ argv: [String], timeout: Int) throws {
        guard let name = argv.first else { throw AgentError.usage("empty command") }
        let command = display(argv)
        let path = try resolve(name)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let variables: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in variables { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, arguments, variables)
        guard result == 0 else { throw AgentError.spawn(command: command, errno: result) }

        guard let status = wait(for: pid, seconds: timeout) else {
            terminate(pid)
            throw AgentError.timeout(command: command, seconds: timeout)
        }
        let signal = status & 0x7f
        if signal == 0 {
            let code = (status >> 8) & 0xff
            if code != 0 { throw AgentError.failed(command: command, status: "exited with status \(code)") }
        } else {
            throw AgentError.failed(command: command, status: "was killed by signal \(signal)")
        }
    }

    /// The absolute path of a program (an absolute name is taken as is).
    static func resolve(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        for directory in searchPath {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw AgentError.programNotFound(name: name, searched: searchPath)
    }

    /// argv for log lines (display only: nothing ever runs through a shell).
    static func display(_ argv: [String]) -> String {
        argv.map { word in
            word.isEmpty || word.contains(where: { $0 == " " || $0 == "\"" || $0 == "'" }) ? "'\(word)'" : word
        }.joined(separator: " ")
    }

    /// Polls for the child's exit; nil if it is still running after `seconds`.
    private static func wait(for pid: pid_t, seconds: Int) -> Int32? {
        let deadline = Clock.now() + Double(seconds)
        var pause: UInt32 = 1_000
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return status }
            if result < 0 && errno != EINTR {
                // ECHILD: nothing left to wait for; report it as a failure.
                return 0x7f00
            }
            if Clock.now() >= deadline { return nil }
            usleep(pause)
            pause = min(pause * 2, 50_000)
        }
    }

    /// SIGTERM, up to 3 s of grace, then SIGKILL and up to 5 s more.
    private static func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        if wait(for: pid, seconds: 3) != nil { return }
        kill(pid, SIGKILL)
        _ = wait(for: pid, seconds: 5)
    }
}

/// Monotonic time in seconds.
enum Clock {
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

/// Runs or, under NXC_AGENT_ROOT, only logs the actions that change the
/// running system.
struct SystemActions {
    let dryRun: Bool
    let log: Logger

    /// Whether systemd has `unit` active (`systemctl is-active --quiet`: not one waiting to start).
    /// Under NXC_AGENT_ROOT nothing is asked: the units named in NXC_AGENT_TEST_ACTIVE (spaces
    /// between them) count as active, so that the tests can take both ways.
    func isActive(_ unit: String) -> Bool {
        let argv = ["systemctl", "is-active", "--quiet", unit]
        if dryRun {
            log.info("would ask: \(Spawn.display(argv))")
            guard let raw = getenv("NXC_AGENT_TEST_ACTIVE") else { return false }
            return String(cString: raw).split(separator: " ").contains { $0 == unit }
        }
        return (try? Spawn.run(argv, timeout: 30)) != nil
    }

    /// Runs `argv`, throwing unless it exits 0 within `timeout` seconds.
    func run(_ argv: [String], timeout: Int) throws {
        if dryRun {
            log.info("would run: \(Spawn.display(argv))")
            return
        }
        log.info("running: \(Spawn.display(argv))")
        try Spawn.run(argv, timeout: timeout)
    }
}
