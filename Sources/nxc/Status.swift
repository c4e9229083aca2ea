import ArgumentParser
import Foundation
import NXCDeploy
import NXCDeployment

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the running deployment: nodes, roles, addresses, state.")

    @OptionGroup var options: ProjectOptions

    @Option(help: "Composition name of the deployment (default: the last one started here).")
    var composition: String?

    @Flag(help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let active = try ActiveDeployment.find(project: options.project, flavour: options.flavour, composition: composition)
            let s = Operations.status(active)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                enc.dateEncodingStrategy = .iso8601
                print(String(decoding: try enc.encode(s), as: UTF8.self))
                return
            }
            print("composition: \(s.composition)   flavour: \(s.flavour)   up: \(s.uptimeSeconds.map { "\($0) s" } ?? "-")")
            let rows = [["NODE", "ROLE", "ADDRESS", "SSH", "STATE"]] + s.nodes.map { [$0.node, $0.role, $0.address, $0.ssh ?? "-", $0.state] }
            let widths = (0..<5).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for r in rows {
                print(r.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
            }
        }
    }
}
