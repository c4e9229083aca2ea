import ArgumentParser
import Foundation
import NXCComposition
import NXCDeploy
import NXCDriver
import NXCDeployment

struct DriverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "driver",
        abstract: "Run the composition's test script (or SCRIPT) against the running deployment.",
        discussion: """
            The script is POSIX sh run on this machine in the project folder, with -e (the first failing
            command ends it) and traced: each command is a step. `nxc` on its PATH is this nxc; the stdout
            of `nxc exec NODE` is the command's own (`test "$(nxc exec db -- cat /etc/nxc/role)" = db`
            works), a role's lines carry their node, and failed nodes are reported on stderr. The exit
            status is the script's; a summary (steps, the failing step and node, time) ends the output.
            At --timeout the script and everything it started are stopped (exit 124). The same script
            works on every flavour.
            """)

    @OptionGroup var options: ProjectOptions

    @Option(help: "Seconds the script may run.")
    var timeout: Double = 3600

    @Argument(help: "Script file (default: the `test:` of the running deployment's composition).")
    var script: String?

    func validate() throws {
        if !(timeout > 0) || !timeout.isFinite { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() async throws {
        let result: Driver.Result = try await reportingErrors {
            let project = options.project
            let text: String
            if let script {
                guard let t = try? String(contentsOfFile: script, encoding: .utf8) else {
                    throw ValidationError("cannot read \(script)")
                }
                text = t
            } else {
                let active = try ActiveDeployment.find(project: project, flavour: options.flavour, composition: nil)
                let file = active.state?.compositionFile ?? project.compositionFile(nil)
                let composition = try Composition.load(path: file)
                guard let t = composition.test, !t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw ValidationError("\(file) has no `test:` script; give a SCRIPT")
                }
                text = t
            }
            // `nxc` in the script is this very binary.
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            let nxcDirectory = URL(fileURLWithPath: exe).deletingLastPathComponent().path
            return try Driver.run(script: text, directory: project.directory, nxcDirectory: nxcDirectory, timeout: timeout) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        }
        print(result.summary)
        if result.status != 0 { throw ExitCode(result.status) }
    }
}

struct Wait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait until a unit is active, a port listens, or a command succeeds on a node or every node of a role.")

    @OptionGroup var options: ProjectOptions

    @Option(help: "Systemd unit that must be active.")
    var unit: String?

    @Option(help: "TCP port that must be listening on the node.")
    var port: Int?

    @Option(help: "Shell command that must exit 0 on the node.")
    var cmd: String?

    @Option(help: "Seconds to wait.")
    var timeout: Double = 120

    @Argument(help: "Node or role.")
    var target: String

    func validate() throws {
        let given = [unit != nil, port != nil, cmd != nil].filter { $0 }.count
        if given != 1 { throw ValidationError("give exactly one of --unit, --port, --cmd") }
        if let p = port, !(1...65535).contains(p) { throw ValidationError("--port must be 1-65535") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        let condition: WaitCondition = unit.map { .unit($0) } ?? port.map { .port($0) } ?? .command(cmd ?? "true")
        try await reportingErrors {
            let active = try ActiveDeployment.find(project: options.project, flavour: options.flavour, composition: nil)
            try await Operations.wait(active, target: target, condition: condition, timeout: timeout) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        }
    }
}
