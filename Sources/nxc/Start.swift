import ArgumentParser
import Foundation
import NXCDeploy

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bind roles to hosts and start the nodes; returns when all answer SSH.")

    @OptionGroup var options: ProjectOptions

    @Option(name: .customShort("r"), help: "Role distribution override, ROLE=N (repeatable).")
    var roles: [String] = []

    @Option(name: .customShort("i"), help: "SSH key (private or .pub) to install for root on the nodes.")
    var identity: String?

    @Option(help: "Seconds to wait for every node (default: the flavour's boot_timeout).")
    var timeout: Double?

    @Argument(help: "Composition file or folder (default: ./composition.yaml).")
    var composition: String?

    func run() async throws {
        try await reportingErrors {
            let doc = try await Operations.start(project: options.project, composition: composition,
                                                 flavour: options.flavour ?? "vm-ramdisk", roles: roles,
                                                 identityFile: identity, timeout: timeout, progress: Progress.printer())
            print("\(doc.composition) (\(doc.flavour)) is up: \(doc.order.count) node(s)")
            for n in doc.order {
                guard let node = doc.nodes[n] else { continue }
                print("  \(n)\t\(node.role)\t\(node.address)\t" + (node.ssh.map { "ssh -p \($0.port) \($0.user)@\($0.host)" } ?? ""))
            }
        }
    }
}
