import ArgumentParser
import Foundation
import NXCBuild
import NXCComposition
import NXCDeploy
import NXCDeployment

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a composition without building it (package names and services are checked by build).")

    @OptionGroup var options: ProjectOptions

    @Argument(help: "Composition file or folder (default: ./composition.yaml).")
    var composition: String?

    func run() async throws {
        try await reportingErrors {
            let file = options.project.compositionFile(composition)
            let c = try Composition.load(path: file)
            let nodes = c.roles.flatMap { $0.hostNames() }
            print("\(c.name): \(c.roles.count) role(s), \(nodes.count) node(s) (\(nodes.joined(separator: ", "))), \(c.allPackages.count) package(s)")
            if let lock = try LockFile.load(path: LockFile.path(forComposition: file)) {
                print("composition.lock: \(lock.packages.count) package(s) of \(lock.suite)/\(lock.architecture), flavours "
                      + lock.flavours.keys.sorted().joined(separator: ", "))
            }
        }
    }
}
