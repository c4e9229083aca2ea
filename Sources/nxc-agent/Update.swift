import Glibc

/// `nxc-agent update`: a newer deployment document for a running node, on standard input (from
/// `nxc start` when a spare took the node of a host that did not come back after its kexec, so
/// that every node ends with the same, final document). It rewrites /etc/hosts and the document
/// kept in /etc/nxc (and /run/nxc, where the fetched one is). Only the other nodes' places may
/// change: a document that gives this node another role, or none, is refused (the node would have
/// to boot again), and nothing is written.
struct UpdateCommand {
    let root: SystemRoot
    let log: Logger
    /// Seconds the standard input may take to end, and its largest size.
    static let inputTimeout = 30.0
    static let inputLimit = 1 << 20

    func run(_ arguments: [String]) -> Int32 {
        guard arguments.isEmpty else {
            writeAll(2, "nxc-agent: update takes no argument (the document comes on standard input)\n")
            return 64
        }
        do {
            let bytes = try SecretCommand.readInput(limit: Self.inputLimit, timeout: Self.inputTimeout)
            let deployment = try Deployment(bytes: bytes, origin: "standard input")
            guard let name = Files.readTrimmed(root.path("/etc/nxc/hostname")), !name.isEmpty,
                  let role = Files.readTrimmed(root.path("/etc/nxc/role")) else {
                throw SecretError("/etc/nxc", "this node was never contextualised (no hostname or role): nothing to update")
            }
            let node = try deployment.node(name)
            guard node.role == role else {
                throw SecretError("standard input", "the document makes \(name) a node of role \(node.role), not \(role): it must boot again")
            }
            let boot = Boot(options: BootOptions(), root: root)
            try boot.writeHosts(deployment)
            try Files.write(root.path("/etc/nxc/deployment.json"), deployment.bytes)
            if Files.exists(root.path(BootContext.fetchedPath)) {
                try Files.write(root.path(BootContext.fetchedPath), deployment.bytes)
            }
            log.info("updated: node \(name) (role \(role)) now has the deployment's \(deployment.nodes.count) nodes")
            return 0
        } catch {
            log.error("\(error)")
            return 1
        }
    }
}
