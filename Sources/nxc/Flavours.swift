import ArgumentParser
import Foundation
import NXCFlavours

struct Flavours: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the flavours with their descriptions.")

    @Option(name: .customLong("project"), help: "Project folder (default: the current folder).")
    var projectDirectory: String?

    func run() async throws {
        let all = Flavour.all(project: projectDirectory ?? FileManager.default.currentDirectoryPath)
        let width = all.map(\.name.count).max() ?? 0
        for f in all {
            print("\(f.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(f.artefact.rawValue)/\(f.start.rawValue)  \(f.description)")
        }
    }
}
