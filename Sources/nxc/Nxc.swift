import ArgumentParser
import Foundation

@main
struct Nxc: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nxc",
        abstract: "Compile one composition of machine roles into containers, VMs, kexec bundles or disk images, and deploy it.",
        version: "0.1.0",
        subcommands: [Init.self, Check.self, Build.self, Lock.self, ExportCommand.self, Verify.self, Start.self, Exec.self, Cp.self, Collect.self, Wait.self, DriverCommand.self, Connect.self, Status.self, Stop.self, Flavours.self]
    )
}
