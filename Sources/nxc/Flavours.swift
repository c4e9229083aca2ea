import ArgumentParser
import Foundation
import NXCFlavours

struct Flavours: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the flavours with their descriptions.")

    @Option(name: .customLong("project"), help: "Project folder (default: the current folder).")
    var projectDirectory: String?

    func run() async throws {
        let scan = Flavour.scan(project: projectDirectory ?? FileManager.default.currentDirectoryPath)
        let width = scan.flavours.map(\.name.count).max() ?? 0
        for f in scan.flavours {
            print("\(f.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(f.artefact)/\(f.start)  \(f.description)")
        }
        // A flavour file that does not load is named, not silently left out of the list.
        for e in scan.errors { FileHandle.standardError.write(Data("\(e)\n".utf8)) }
        if !scan.errors.isEmpty { throw ExitCode(1) }
    }
}
