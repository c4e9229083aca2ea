import ArgumentParser
import Foundation
import NXCBuild
import NXCDeploy
import NXCDeployment

struct Connect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open a shell on one node, or a tmux session with one pane per node.")

    @OptionGroup var options: ProjectOptions

    @Option(help: "Composition name of the deployment (default: the last one started here).")
    var composition: String?

    @Option(help: "tmux layout for several nodes.")
    var layout: String = "tiled"

    @Option(help: "tmux session name (default: nxc-<composition>).")
    var session: String?

    @Flag(help: "Create the tmux session but do not attach to it.")
    var detach = false

    @Argument(help: "Nodes or roles (default: every node).")
    var targets: [String] = []

    func run() async throws {
        let status: Int32 = try await reportingErrors {
            let active = try ActiveDeployment.find(project: options.project, flavour: options.flavour, composition: composition)
            guard let state = active.state else {
                throw DeployError.notRunning(composition: active.deployment.composition, flavour: active.deployment.flavour)
            }
            var nodes: [String] = []
            for t in (targets.isEmpty ? active.deployment.order : targets) {
                for n in try active.deployment.resolve(t) where !nodes.contains(n) { nodes.append(n) }
            }
            let argvs = nodes.map {
                active.method.remoteCommand(node: $0, deployment: active.deployment, state: state, command: [], interactive: true)
            }
            if nodes.count == 1 && !detach { return try Operations.runInherited(argvs[0]) }
            guard Command.which("tmux") != nil else { throw DeployError.toolMissing("tmux", package: "tmux") }
            let name = session ?? "nxc-\(active.deployment.composition)"
            _ = try? Command.status(["tmux", "kill-session", "-t", name], timeout: 10)
            // tmux runs each pane's command through a shell: quote once, here.
            try Command.run(["tmux", "new-session", "-d", "-s", name, "-n", "nxc", "-x", "200", "-y", "50",
                             ShellQuote.join(argvs[0])], timeout: 20)
            try Command.run(["tmux", "select-pane", "-t", "\(name):0.0", "-T", nodes[0]], timeout: 10)
            for (i, argv) in argvs.enumerated().dropFirst() {
                try Command.run(["tmux", "split-window", "-t", "\(name):0", ShellQuote.join(argv)], timeout: 20)
                try Command.run(["tmux", "select-pane", "-t", "\(name):0.\(i)", "-T", nodes[i]], timeout: 10)
                try Command.run(["tmux", "select-layout", "-t", "\(name):0", layout], timeout: 10)
            }
            try Command.run(["tmux", "set-option", "-t", name, "pane-border-status", "top"], timeout: 10)
            if detach || isatty(0) == 0 {
                print("tmux session '\(name)' with \(nodes.count) pane(s): \(nodes.joined(separator: ", ")); attach with: tmux attach -t \(name)")
                return 0
            }
            return try Operations.runInherited(["tmux", "attach-session", "-t", name])
        }
        if status != 0 { throw ExitCode(status) }
    }
}
