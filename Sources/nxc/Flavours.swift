import ArgumentParser
import Foundation
import NXCFlavours

struct Flavours: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the flavours with their descriptions.")

    @Option(name: .customLong("project"), help: "Project folder (default: the current folder).")
    var projectDirectory: String?

    func run() async throws {
        let project = projectDirectory ?? FileManager.default.currentDirectoryPath
        let scan = Flavour.scan(project: project)
        // The flavour of commands given no -f is marked '*'; two defaults in one folder are an error below.
        var defaultError: Error?
        var chosen: String?
        do { chosen = try Flavour.defaultName(project: project) } catch { defaultError = error }
        let width = scan.flavours.map(\.name.count).max() ?? 0
        for f in scan.flavours {
            let mark = f.name == chosen ? "*" : " "
            print("\(mark) \(f.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(f.artefact)/\(f.start)  \(f.description)")
        }
        if chosen != nil { print("(* the default: commands given no -f use it)") }
        if let defaultError, scan.errors.isEmpty {
            FileHandle.standardError.write(Data("\(defaultError)\n".utf8))
            throw ExitCode(1)
        }
        // A flavour file that does not load is named, not silently left out of the list.
        for e in scan.errors { FileHandle.standardError.write(Data("\(e)\n".utf8)) }
        if !scan.errors.isEmpty { throw ExitCode(1) }
    }
}
