import ArgumentParser
import Foundation
import NXCDeploy
import NXCDeployment

struct Exec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command on a node, or on every node of a role in parallel.",
        discussion: """
            The exit status is the remote one (the worst one for a role). One node's output is the command's own, \
            unchanged (also under `nxc driver`); output of several nodes is prefixed with the node name.
            """)

    @OptionGroup var options: ProjectOptions

    @Option(help: "Composition name of the deployment (default: the last one started here).")
    var composition: String?

    @Argument(help: "Node or role.")
    var target: String

    @Argument(parsing: .captureForPassthrough, help: "The command, after --.")
    var command: [String] = []

    func validate() throws {
        if command.first == "--" { return }
        if command.isEmpty { throw ValidationError("give the command after --, e.g. nxc exec server -- hostname") }
    }

    func run() async throws {
        let argv = command.first == "--" ? Array(command.dropFirst()) : command
        let status: Int32 = try await reportingErrors {
            let active = try ActiveDeployment.find(project: options.project, flavour: options.flavour, composition: composition)
            return try await Operations.exec(active, target: target, command: argv)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
