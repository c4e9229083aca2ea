import ArgumentParser
import Foundation
import NXCDeploy
import NXCDeployment
import NXCFlavours

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a project from a template (`-t list` shows them).")

    @Option(name: .customShort("t"), help: "Template name.")
    var template: String = "basic"

    @Argument(help: "Folder to create (default: the current folder).")
    var directory: String = "."

    static func templateDirectories() -> [String] {
        var dirs: [String] = []
        if let d = ProcessInfo.processInfo.environment["NXC_DATA"], !d.isEmpty { dirs.append(d + "/templates") }
        return dirs + DataFiles.installedDirectories(named: "templates")
    }

    func run() async throws {
        try await reportingErrors {
            let fm = FileManager.default
            var templates: [String: String] = [:]
            for d in Self.templateDirectories() {
                for n in (try? fm.contentsOfDirectory(atPath: d)) ?? [] where templates[n] == nil
                    && fm.fileExists(atPath: "\(d)/\(n)/composition.yaml") {
                    templates[n] = "\(d)/\(n)"
                }
            }
            if template == "list" {
                for n in templates.keys.sorted() { print(n) }
                return
            }
            guard let src = templates[template] else {
                throw ValidationErrorMessage("unknown template '\(template)'; templates: \(templates.keys.sorted().joined(separator: ", "))")
            }
            // Whole or nothing: a failure or a kill mid-copy leaves no half project behind.
            try ProjectTemplate.instantiate(template: src, into: directory)
            print("created a '\(template)' project in \(directory); next: nxc build && nxc start")
        }
    }
}

struct ValidationErrorMessage: Error, CustomStringConvertible {
    var description: String
    init(_ s: String) { description = "error: " + s }
}
