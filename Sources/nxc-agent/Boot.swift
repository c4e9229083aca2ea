import Glibc

/// Options of `nxc-agent boot` and `nxc-agent whoami`.
struct BootOptions {
    var host: String?
    var deployment: String?
    /// Seconds to wait for the deployment's interfaces to appear.
    var linkTimeout = 30
    /// Seconds to keep trying to fetch nxc.deployment_url.
    var fetchTimeout = 120

    static func parse(_ arguments: [String]) throws -> BootOptions {
        var options = BootOptions()
        var index = 0
        func value(_ option: String) throws -> String {
            index += 1
            guard index < arguments.count else { throw AgentError.usage("\(option) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            var argument = arguments[index]
            var inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                inline = String(argument[argument.index(after: equals)...])
                argument = String(argument[..<equals])
            }
            switch argument {
            case "--host":
                options.host = try inline ?? value(argument)
            case "--deployment":
                options.deployment = try inline ?? value(argument)
            case "--link-timeout":
                let text = try inline ?? value(argument)
                guard let seconds = Int(text), seconds >= 0, seconds <= 3600 else {
                    throw AgentError.usage("--link-timeout takes seconds between 0 and 3600, not \"\(text)\"")
                }
                options.linkTimeout = seconds
            case "--fetch-timeout":
                let text = try inline ?? value(argument)
                guard let seconds = Int(text), seconds >= 0, seconds <= 3600 else {
                    throw AgentError.usage("--fetch-timeout takes seconds between 0 and 3600, not \"\(text)\"")
                }
                options.fetchTimeout = seconds
            default:
                throw AgentError.usage("unknown argument \"\(arguments[index])\"")
            }
            index += 1
        }
        return options
    }
}

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

    /// Before fetching nxc.deployment_url: lo, then the interfaces and routes
    /// the kernel command line gives (nxc.if=, nxc.route=), exactly as the
    /// document's are set; the document's are set again later (idempotent).
    /// Returns the failures, which do not stop the fetch: it may work anyway.
    private func networkForFetching(context: BootContext, network: Network) throws -> [String] {
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
    private func expectedSHA256(_ context: BootContext) throws -> String? {
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
    private func saveFetched(_ deployment: Deployment) throws {
        try Files.makeDirectories(root.path("/run/nxc"))
        try Files.write(root.path(BootContext.fetchedPath), deployment.bytes)
        log.info("\(BootContext.fetchedPath): the fetched document, for the generator and whoami in this boot")
    }

    // 2.
    private func setHostname(_ name: String) throws {
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

    private func currentHostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // 3.
    private func writeHosts(_ deployment: Deployment) throws {
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
    private func writeAuthorizedKeys(_ keys: [String]) throws {
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
    private func saveIdentity(name: String, role: String, deployment: Deployment) throws {
        let directory = root.path("/etc/nxc")
        try Files.makeDirectories(directory)
        try Files.write(directory + "/role", text: role + "\n")
        try Files.write(directory + "/hostname", text: name + "\n")
        try Files.write(directory + "/deployment.json", deployment.bytes)
        log.info("/etc/nxc: role, hostname and deployment.json written")
    }

    /// Copies the role's files from the image's role folder into place,
    /// keeping their modes; sets `changed` if any file changed. Returns the
    /// failures (one per file that could not be installed).
    private func installRoleFiles(_ composition: CompositionRoles, role: String, changed: inout Bool) -> [String] {
        let paths = composition.files[role] ?? []
        guard !paths.isEmpty else { return [] }
        var failures: [String] = []
        var count = 0
        for path in paths {
            do {
                let source = root.path(CompositionRoles.rolesDirectory + "/" + role + path)
                var info = stat()
                guard stat(source, &info) == 0 else {
                    throw AgentError.io(path: source, operation: "stat", errno: errno)
                }
                let bytes = try Files.readBytes(source, limit: 256 << 20)
                let destination = root.path(path)
                if let slash = destination.lastIndex(of: "/"), slash != destination.startIndex {
                    try Files.makeDirectories(String(destination[..<slash]))
                }
                if try Files.write(destination, bytes, mode: info.st_mode & 0o7777) != .unchanged { count += 1 }
            } catch {
                log.error("role file \(path): \(error)")
                failures.append("role file \(path): \(error)")
            }
        }
        log.info("role files: \(paths.count - failures.count) of \(paths.count) in place, \(count) changed")
        changed = changed || count > 0
        return failures
    }

    // 7. Host keys are made on the node: an artefact never holds a private key.
    private func makeHostKeys() throws {
        if Files.exists(root.path("/etc/ssh/ssh_host_ed25519_key")) {
            log.info("SSH host keys are present")
            return
        }
        if !system.dryRun && (try? Spawn.resolve("ssh-keygen")) == nil {
            // Images without OpenSSH (containers reached with `docker exec`): nothing uses host keys.
            log.info("SSH host keys: none made (no ssh-keygen: this image has no SSH server)")
            return
        }
        // Ed25519 and ECDSA only: an RSA key takes seconds to generate on an emulated CPU.
        for (type, file) in [("ed25519", "/etc/ssh/ssh_host_ed25519_key"), ("ecdsa", "/etc/ssh/ssh_host_ecdsa_key")] {
            try system.run(["ssh-keygen", "-q", "-t", type, "-N", "", "-C", "", "-f", file], timeout: 60)
        }
    }

    // 8.
    /// Starts the role's units. When `restart` (role files changed), a unit
    /// that is already active is restarted so that it reads them: on a node
    /// contextualised again, or a unit the generator could not order after
    /// this agent. At boot the role's services wait for the agent (the
    /// generator orders them after it), so they are started, not restarted.
    private func startServices(_ composition: CompositionRoles, role: String, restart: Bool, reload: Bool = false) -> [String] {
        guard let units = composition.services[role] else {
            let error = AgentError.invalid(origin: root.path(CompositionRoles.path), key: "roles",
                                           message: "has no role \"\(role)\"")
            log.error("services: \(error)")
            return ["services: \(error)"]
        }
        guard !units.isEmpty else {
            log.info("role \(role) has no services")
            return []
        }
        var failures: [String] = []
        // The generator masks every role's services when it cannot tell which
        // node this is (the name came from --host, say). Now that /etc/nxc
        // holds the answer, a reload runs it again and lifts those masks.
        let early = root.path(Boot.earlyGeneratorDirectory)
        let masked = units.filter { Files.linkTarget(early + "/" + $0) == "/dev/null" }
        if !masked.isEmpty || reload {
            log.info(masked.isEmpty ? "the role brings unit files: reloading systemd"
                : "the generator masked \(masked.joined(separator: " ")) (it did not know this node); reloading systemd to run it again")
            do {
                try system.run(["systemctl", "daemon-reload"], timeout: 60)
            } catch {
                log.error("\(error)")
                failures.append("\(error)")
            }
        }
        if restart { log.info("role files changed: restarting the role's services that already run, so they read them") }
        for unit in units {
            let running = restart && system.isActive(unit)
            do {
                try system.run(["systemctl", running ? "restart" : "start", "--no-block", unit], timeout: 30)
            } catch {
                log.error("\(error)")
                failures.append("\(error)")
            }
        }
        return failures
    }

    /// A disk image's first boot (`nxc.await=ssh`: Kadeploy deployed it; nxc contextualises it
    /// next over SSH with `nxc-agent boot --host NAME --deployment FILE`): only what SSH needs.
    private func awaitContextualisation() -> Int32 {
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
    private func fatal(_ error: any Error, also: [String] = []) -> Int32 {
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
    private func finish(name: String, failures: [String]) -> Int32 {
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
