import Glibc

/// The node's own identity: the fetched document, hostname, /etc/hosts, root's keys, /etc/nxc.
extension Boot {
    /// Before fetching nxc.deployment_url: lo, then the interfaces and routes
    /// the kernel command line gives (nxc.if=, nxc.route=), exactly as the
    /// document's are set; the document's are set again later (idempotent).
    /// Returns the failures, which do not stop the fetch: it may work anyway.
    func networkForFetching(context: BootContext, network: Network) throws -> [String] {
        let (interfaces, routes) = try context.commandLineNetwork()
        log.info("network to fetch the deployment, from the kernel command line: "
            + "\(interfaces.count) interface\(interfaces.count == 1 ? "" : "s") (nxc.if), "
            + "\(routes.count) route\(routes.count == 1 ? "" : "s") (nxc.route)")
        do {
            try network.bringLoopbackUp()
        } catch {
            // Recorded by the "network: lo" step, which tries again.
            log.error("network: lo: \(error)")
        }
        var failures = network.configure(interfaces, timeout: options.linkTimeout).map { "network (nxc.if): " + $0 }
        failures += network.addRoutes(routes).map { "network (nxc.route): " + $0 }
        return failures
    }

    /// nxc.deployment_sha256, lower case; nil (with a warning) when absent: a hand-run kexec.sh may
    /// not give it. A value that is not 64 hex digits is an error, not a reason to skip the check.
    func expectedSHA256(_ context: BootContext) throws -> String? {
        guard let value = context.kernelParameters["nxc.deployment_sha256"] else {
            log.warning("no nxc.deployment_sha256 on the kernel command line: the fetched document is not checked")
            return nil
        }
        let hex = value.lowercased()
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw AgentError.kernelParameter(word: "nxc.deployment_sha256=\(value)", message: "is not 64 hex digits")
        }
        return hex
    }

    /// The fetched document, for the generator (run again by daemon-reload
    /// to lift its masks) and `whoami` in this boot.
    func saveFetched(_ deployment: Deployment) throws {
        try Files.makeDirectories(root.path("/run/nxc"))
        try Files.write(root.path(BootContext.fetchedPath), deployment.bytes)
        log.info("\(BootContext.fetchedPath): the fetched document, for the generator and whoami in this boot")
    }

    // 2.
    func setHostname(_ name: String) throws {
        if root.isTest {
            log.info("would set the hostname to \(name)")
        } else if sethostname(name, name.utf8.count) != 0 {
            let code = errno
            // Containers may not set it (no CAP_SYS_ADMIN) but the engine already did.
            guard currentHostname() == name else {
                throw AgentError.io(path: name, operation: "sethostname", errno: code)
            }
            log.info("hostname is already \(name)")
        } else {
            log.info("hostname set to \(name)")
        }
        try Files.write(root.path("/etc/hostname"), text: name + "\n")
    }

    func currentHostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // 3.
    func writeHosts(_ deployment: Deployment) throws {
        if deployment.nodes.values.allSatisfy({ $0.address == nil }) {
            // Containers: the engine resolves node names and writes /etc/hosts itself.
            log.info("/etc/hosts: left as it is (no addresses in the deployment: the engine resolves node names)")
            return
        }
        var lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        for name in deployment.nodeNames {
            guard let address = deployment.nodes[name]?.address else {
                log.warning("node \(name) has no address in the deployment: not in /etc/hosts")
                continue
            }
            lines.append("\(address) \(name)")
        }
        try Files.write(root.path("/etc/hosts"), text: lines.joined(separator: "\n") + "\n")
        log.info("/etc/hosts: \(lines.count - 2) node\(lines.count == 3 ? "" : "s")")
    }

    // 4.
    func writeAuthorizedKeys(_ keys: [String]) throws {
        let directory = root.path("/root/.ssh")
        try Files.makeDirectories(directory, mode: 0o700)
        try Files.setMode(directory, 0o700)
        let text = keys.map { $0 + "\n" }.joined()
        try Files.write(directory + "/authorized_keys", text: text, mode: 0o600)
        if keys.isEmpty {
            log.warning("the deployment has no authorized_keys: nobody can log in as root over SSH")
        } else {
            log.info("/root/.ssh/authorized_keys: \(keys.count) key\(keys.count == 1 ? "" : "s")")
        }
    }

    // 5.
    func saveIdentity(name: String, role: String, deployment: Deployment) throws {
        let directory = root.path("/etc/nxc")
        try Files.makeDirectories(directory)
        try Files.write(directory + "/role", text: role + "\n")
        try Files.write(directory + "/hostname", text: name + "\n")
        try Files.write(directory + "/deployment.json", deployment.bytes)
        log.info("/etc/nxc: role, hostname and deployment.json written")
    }

}
