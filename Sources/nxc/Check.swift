import ArgumentParser
import Foundation
import NXCComposition
import NXCDeploy

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a composition without building it (package names and services are checked by build).")

    @OptionGroup var options: ProjectOptions

    @Argument(help: "Composition file or folder (default: ./composition.yaml).")
    var composition: String?

    func run() async throws {
        try await reportingErrors {
            let c = try Composition.load(path: options.project.compositionFile(composition))
            let nodes = c.roles.flatMap { $0.hostNames() }
            print("\(c.name): \(c.roles.count) role(s), \(nodes.count) node(s) (\(nodes.joined(separator: ", "))), \(c.allPackages.count) package(s)")
        }
    }
}
