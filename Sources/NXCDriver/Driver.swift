import Foundation
import NXCDeployment
import NXCBuild

/// `nxc driver`: runs a test script (the composition's `test:`, or a file) on this machine against
/// the running deployment. The script is POSIX sh, run with `-e` (the first failing command ends
/// it) and traced (`-x`, with nxc's own PS4): every traced command is a step. `nxc` on the script's
/// PATH is this nxc; under the driver, `nxc exec` reports on stderr which nodes failed, so the
/// summary names the failing step and node, while its stdout stays the command's own (prefixed
/// with the node only for a role, as always). The exit status is the script's.
public enum Driver {
    /// Set in the script's environment; `nxc exec` reads it (`DriverMarks`).
    public static let environmentFlag = DriverMarks.environmentFlag
    /// What `nxc exec` writes on stderr, under the driver, for each node whose command failed.
    public static let failureMark = DriverMarks.failureMark
    static let stepMark = "+nxc-step "

    public struct Step: Sendable {
        public var number: Int
        public var command: String
        public var failedNodes: [String] = []
    }

    public struct Result: Sendable {
        public var status: Int32
        public var steps: [Step]
        public var seconds: Double

        public var summary: String {
            let time = String(format: "%.1f s", seconds)
            if status == 0 { return "driver: \(steps.count) step(s) passed in \(time)" }
            guard let last = steps.last else { return "driver: the script failed (exit \(status)) before its first step, in \(time)" }
            let nodes = last.failedNodes.isEmpty ? "" : " on " + last.failedNodes.joined(separator: ", ")
            return "driver: FAILED at step \(last.number) of \(steps.count) (exit \(status))\(nodes): \(last.command) (in \(time))"
        }
    }

    /// Runs `script` in `directory` (the project), with `nxcDirectory` first on PATH. Lines go to
    /// `output` as they come: the script's own, and one `── step N: COMMAND` line per step.
    /// The script runs in a process group of its own. At `timeout` the whole group gets SIGTERM,
    /// then SIGKILL, and `run` returns (exit 124) without waiting for the pipes to close: a
    /// background job of the script may hold them. When the script ends, what it left running in
    /// its group is stopped the same way.
    public static func run(script: String, directory: String, nxcDirectory: String, timeout: Double,
                           output: @escaping @Sendable (String) -> Void) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = nxcDirectory + ":" + (env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin")
        env["PS4"] = stepMark
        env[environmentFlag] = "1"
        let collector = StepCollector(output: output)
        let started = Date()
        // Installed first: a Ctrl-C just after the spawn must not leave the script running alone.
        let forwarding = ScriptProcess.SignalForwarding()
        defer { forwarding.end() }
        let child = try ScriptProcess(argv: ["/bin/sh", "-e", "-x", "-c", script, "nxc-driver"],
                                      environment: env, directory: directory)
        forwarding.forward(to: child.pid)
        let streams = [LineSplitter { collector.stdout($0) }, LineSplitter { collector.stderr($0) }]

        var status = child.wait(until: started.addingTimeInterval(timeout), feeding: streams)
        if status == nil {
            child.signalGroup(SIGTERM)
            status = child.wait(until: Date().addingTimeInterval(2), feeding: streams)
            child.signalGroup(SIGKILL)
            if status == nil { _ = child.wait(until: Date().addingTimeInterval(5), feeding: streams) }
            status = 124
            output("driver: the script did not finish within \(Int(timeout)) s; stopped")
        } else {
            // Background jobs the script left behind: they would hold the pipes and outlive the run.
            child.signalGroup(SIGTERM)
            child.signalGroup(SIGKILL, after: 1)
        }
        child.drain(feeding: streams, for: 0.5)
        child.closeStreams()
        for s in streams { s.flush() }
        return Result(status: status ?? 124, steps: collector.steps, seconds: Date().timeIntervalSince(started))
    }
}
