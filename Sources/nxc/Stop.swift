import ArgumentParser
import Foundation
import NXCDeploy
import NXCDeployment

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop what `nxc start` started; nothing is left running.")

    @OptionGroup var options: ProjectOptions

    @Option(help: "Composition name of the deployment (default: the last one started here).")
    var composition: String?

    func run() async throws {
        try await reportingErrors {
            let active = try ActiveDeployment.find(project: options.project, flavour: options.flavour, composition: composition)
            let failed = Operations.stop(active)
            guard failed.isEmpty else {
                throw DeployError.couldNotStop(failed)
            }
            print("stopped \(active.deployment.composition) (\(active.deployment.flavour))")
        }
    }
}
