import Glibc

/// `nxc-agent boot`: turns the image into the node the deployment says this
/// is. Run once per boot by a oneshot unit ordered before ssh.service; it can
/// also be run again over SSH (disk images). Steps: find this node and the
/// deployment (for nxc.deployment_url: lo, the kernel command line's
/// nxc.if= interfaces and nxc.route= routes, then an HTTP GET retried for
/// up to --fetch-timeout seconds); hostname; /etc/hosts; root's authorized_keys;
/// /etc/nxc/{role,hostname,deployment.json}; the role's files (from
/// /usr/share/nxc/roles/ROLE/, listed in composition.json); lo and the
/// deployment's interfaces, addresses and routes; SSH host keys; the role's
/// services. It does every step it can and exits 1 if any failed;
/// /run/nxc/ready (the node name) tells pollers it has finished,
/// /run/nxc/failed lists what failed (alone, if it could not start at all).
struct Boot {
    let options: BootOptions
    let root: SystemRoot
    let log: Logger
    let system: SystemActions

    static let readyPath = "/run/nxc/ready"
    static let failedPath = "/run/nxc/failed"
    static let earlyGeneratorDirectory = "/run/systemd/generator.early"

    init(options: BootOptions, root: SystemRoot) {
        self.options = options
        self.root = root
        log = Logger(program: "nxc-agent", sink: .standardOutput)
        system = SystemActions(dryRun: root.isTest, log: log)
    }

    func run() -> Int32 {
        if root.isTest { log.info("test mode: files under \(root.prefix), system left alone (NXC_AGENT_ROOT)") }
        // A ready file from an earlier run must not be taken for this one.
        try? Files.remove(root.path(Boot.readyPath))

        // 1. Who am I, and the deployment.
        let context = BootContext(root: root, log: log)
        guard let (name, source) = context.nodeName(option: options.host) else {
            if context.kernelParameters["nxc.await"] == "ssh" { return awaitContextualisation() }
            return fatal(AgentError.noNodeName)
        }
        var failures: [String] = []
        let network = Network(root: root, system: system, log: log)
        let deployment: Deployment
        let node: Deployment.Node
        do {
            deployment = try context.deployment(option: options.deployment) { url in
                let sha256 = try expectedSHA256(context)
                failures += try networkForFetching(context: context, network: network)
                return try DeploymentFetch.fetch(url, budget: options.fetchTimeout, sha256: sha256, log: log)
            }
            node = try deployment.node(name)
        } catch {
            return fatal(error, also: failures)
        }
        log.info("this is node \(name) (from \(source)), role \(node.role)")
        log.info("deployment from \(deployment.origin): composition \(deployment.composition ?? "?"), "
            + "flavour \(deployment.flavour ?? "?"), \(deployment.nodes.count) nodes")

        func step(_ title: String, _ body: () throws -> Void) {
            do {
                try body()
            } catch {
                log.error("\(title): \(error)")
                failures.append("\(title): \(error)")
            }
        }

        step("hostname") { try setHostname(name) }
        step("/etc/hosts") { try writeHosts(deployment) }
        step("SSH authorized keys") { try writeAuthorizedKeys(deployment.authorizedKeys) }
        if deployment.fetched {
            step(BootContext.fetchedPath) { try saveFetched(deployment) }
        }
        step("/etc/nxc") { try saveIdentity(name: name, role: node.role, deployment: deployment) }
        var composition: CompositionRoles?
        step("composition") { composition = try context.composition() }
        var roleFilesChanged = false
        if let composition {
            failures += installRoleFiles(composition, role: node.role, changed: &roleFilesChanged)
        }
        step("network: lo") { try network.bringLoopbackUp() }
        if node.interfaces.isEmpty {
            log.info("network: no interfaces in the deployment, left to the engine or DHCP")
        }
        failures += network.configure(node.interfaces, timeout: options.linkTimeout).map { "network: " + $0 }
        step("SSH host keys") { try makeHostKeys() }
        if let composition {
            // Unit files among the role's files: systemd only sees them after a reload.
            let unitDirectories = ["/etc/systemd/system/", "/usr/lib/systemd/system/", "/lib/systemd/system/"]
            let bringsUnits = (composition.files[node.role] ?? []).contains { path in unitDirectories.contains { path.hasPrefix($0) } }
            failures += startServices(composition, role: node.role, restart: roleFilesChanged, reload: bringsUnits)
        }
        return finish(name: name, failures: failures)
    }

    /// A disk image's first boot (`nxc.await=ssh`: Kadeploy deployed it; nxc contextualises it
    /// next over SSH with `nxc-agent boot --host NAME --deployment FILE`): only what SSH needs.
    func awaitContextualisation() -> Int32 {
        log.info("no node name yet (nxc.await=ssh): making SSH host keys and waiting to be contextualised over SSH")
        var failures: [String] = []
        let network = Network(root: root, system: system, log: log)
        do { try network.bringLoopbackUp() } catch { failures.append("network: lo: \(error)") }
        do { try makeHostKeys() } catch { failures.append("SSH host keys: \(error)") }
        do {
            try Files.makeDirectories(root.path("/run/nxc"))
            try Files.write(root.path("/run/nxc/awaiting"), text: "ssh\n")
        } catch {
            failures.append("\(error)")
        }
        for f in failures { log.error(f) }
        return failures.isEmpty ? 0 : 1
    }

    /// Nothing can be done: say why, also in /run/nxc/failed so a deployer
    /// polling for /run/nxc/ready can stop waiting and show the reason.
    /// `also`: failures before it, listed after it (they may explain it).
    func fatal(_ error: any Error, also: [String] = []) -> Int32 {
        log.error("\(error)")
        do {
            try Files.makeDirectories(root.path("/run/nxc"))
            try Files.write(root.path(Boot.failedPath), text: ([("\(error)")] + also).map { $0 + "\n" }.joined())
        } catch let failure {
            log.error("\(failure)")
        }
        return 1
    }

    // 9.
    func finish(name: String, failures: [String]) -> Int32 {
        var status: Int32 = failures.isEmpty ? 0 : 1
        do {
            try Files.makeDirectories(root.path("/run/nxc"))
            if failures.isEmpty {
                try Files.remove(root.path(Boot.failedPath))
            } else {
                try Files.write(root.path(Boot.failedPath), text: failures.map { $0 + "\n" }.joined())
            }
            try Files.write(root.path(Boot.readyPath), text: name + "\n")
        } catch {
            log.error("\(error)")
            status = 1
        }
        if failures.isEmpty {
            log.info("node \(name) is ready")
        } else {
            log.error("node \(name) finished with \(failures.count) failure(s), listed in \(Boot.failedPath)")
        }
        return status
    }
}
