import Foundation
import NXCBuild

/// `nxc driver`: runs a test script (the composition's `test:`, or a file) on this machine against
/// the running deployment. The script is POSIX sh, run with `-e` (the first failing command ends
/// it) and traced (`-x`, with nxc's own PS4): every traced command is a step. `nxc` on the script's
/// PATH is this nxc; under the driver, `nxc exec` prefixes every line with its node and reports
/// which nodes failed, so the summary names the failing step and node. The exit status is the
/// script's.
public enum Driver {
    /// Set in the script's environment; `nxc exec` reads it.
    public static let environmentFlag = "NXC_DRIVER"
    /// What `nxc exec` writes on stderr, under the driver, for each node whose command failed.
    public static let failureMark = "nxc-driver: failed on "
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
    public static func run(script: String, directory: String, nxcDirectory: String, timeout: Double,
                           output: @escaping @Sendable (String) -> Void) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = nxcDirectory + ":" + (env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin")
        env["PS4"] = stepMark
        env[environmentFlag] = "1"
        let collector = StepCollector(output: output)
        let started = Date()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-e", "-x", "-c", script, "nxc-driver"]
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        p.environment = env
        p.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let outLines = LineSplitter { collector.stdout($0) }
        let errLines = LineSplitter { collector.stderr($0) }
        out.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            if d.isEmpty { h.readabilityHandler = nil } else { outLines.feed(d) }
        }
        err.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            if d.isEmpty { h.readabilityHandler = nil } else { errLines.feed(d) }
        }
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        var status: Int32
        if p.isRunning {
            Processes.stop(p.processIdentifier, grace: 5)
            status = 124
            output("driver: the script did not finish within \(Int(timeout)) s; stopped")
        } else {
            status = p.terminationReason == .exit ? p.terminationStatus : 128 + p.terminationStatus
        }
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
        outLines.feed(out.fileHandleForReading.readDataToEndOfFile())
        errLines.feed(err.fileHandleForReading.readDataToEndOfFile())
        outLines.flush()
        errLines.flush()
        return Result(status: status, steps: collector.steps, seconds: Date().timeIntervalSince(started))
    }
}

/// Splits a byte stream into lines.
final class LineSplitter: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = Data()
    private let line: (String) -> Void
    init(_ line: @escaping (String) -> Void) { self.line = line }

    func feed(_ d: Data) {
        lock.lock()
        defer { lock.unlock() }
        pending.append(d)
        while let nl = pending.firstIndex(of: 10) {
            line(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
            pending.removeSubrange(pending.startIndex...nl)
        }
    }

    func flush() {
        lock.lock()
        defer { lock.unlock() }
        if !pending.isEmpty { line(String(decoding: pending, as: UTF8.self)) }
        pending = Data()
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
