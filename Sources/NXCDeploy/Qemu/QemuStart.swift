import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCComposition
import NXCFlavours

/// Starts one QEMU VM per node on this machine: TCG, a user-mode NIC forwarding a 127.0.0.1 port
/// to SSH, and a private network through a vde_switch on a unix socket (never leaves the machine).
struct QemuStart: StartMethod {
    var name: String { "qemu" }
    var bindsHosts: Bool { false }
    var summary: String { "VMs on this machine" }
    var settingsType: any FlavourSettings.Type { QemuSettings.self }
    /// Linux's COMMAND_LINE_SIZE on x86.
    static let commandLineLimit = 2048

    func prepare(buildDirectory: String, composition: Composition, flavour: Flavour) throws -> [String] {
        var written: [String] = []
        let launch = buildDirectory + "/launch.sh"
        try writeAtomically(Data(LaunchScript.generic(composition: composition, flavour: flavour).utf8), to: launch, mode: 0o755)
        written.append(launch)
        let nodes = try RoleDistribution.resolve(composition, overrides: [])
        for (i, n) in nodes.enumerated() {
            let mem = composition.role(named: n.role)?.memoryMiB ?? flavour.settings(as: QemuSettings.self).memory
            let p = buildDirectory + "/launch-\(n.node).sh"
            try writeAtomically(Data(LaunchScript.perNode(node: n.node, index: i + 1, memory: mem).utf8), to: p, mode: 0o755)
            written.append(p)
        }
        // A deployment for hand-run VMs: the composition's nodes, no keys (console only).
        let doc = Self.deployment(composition: composition.name, flavour: flavour.name, nodes: nodes, keys: [], ports: [:])
        let p = buildDirectory + "/deployment.json"
        try writeAtomically(try doc.encoded(pretty: false), to: p)
        written.append(p)
        return written
    }

    static func deployment(composition: String, flavour: String, nodes: [(node: String, role: String)],
                           keys: [String], ports: [String: Int]) -> Deployment {
        var map: [String: Deployment.Node] = [:]
        for (i, n) in nodes.enumerated() {
            let index = i + 1
            let addr = LaunchScript.privateAddress(index)
            map[n.node] = Deployment.Node(
                role: n.role, address: addr,
                interfaces: [
                    .init(mac: LaunchScript.privateMAC(index), addresses: ["\(addr)/\(LaunchScript.prefixLength)"]),
                    .init(mac: LaunchScript.userMAC(index), addresses: [LaunchScript.userAddress]),
                ],
                ssh: ports[n.node].map { .init(host: "127.0.0.1", port: $0) })
        }
        return Deployment(composition: composition, flavour: flavour, authorizedKeys: keys, nodes: map, order: nodes.map(\.node))
    }

    func start(_ ctx: StartContext) async throws -> (Deployment, RuntimeState) {
        for (tool, pkg) in [("qemu-system-x86_64", "qemu-system-x86"), ("vde_switch", "vde2"), ("ssh", "openssh-client")]
        where Command.which(tool) == nil {
            throw DeployError.toolMissing(tool, package: pkg)
        }
        for f in ["kernel", "initrd", "launch.sh"] where !FileManager.default.fileExists(atPath: ctx.buildDirectory + "/" + f) {
            throw DeployError.notBuilt(path: ctx.buildDirectory + "/" + f, flavour: ctx.flavour.name)
        }
        guard ctx.nodes.count <= 250 else { throw DeployError.tooManyNodes(count: ctx.nodes.count, limit: 250, unit: "VMs") }
        let run = ctx.runDirectory
        if let old = RuntimeState.load(from: run), old.processes.contains(where: { Processes.isRunning($0) }) {
            throw DeployError.alreadyRunning("\(ctx.composition.name) (\(ctx.flavour.name)) is already running; `nxc stop` it first")
        }
        let fm = FileManager.default
        try? fm.removeItem(atPath: run)
        try fm.createDirectory(atPath: run, withIntermediateDirectories: true)

        var ports: [String: Int] = [:]
        var used = Set<Int>()
        for n in ctx.nodes {
            var p = try Processes.freePort()
            while used.contains(p) { p = try Processes.freePort() }
            used.insert(p)
            ports[n.node] = p
        }
        let doc = Self.deployment(composition: ctx.composition.name, flavour: ctx.flavour.name, nodes: ctx.nodes,
                                  keys: [ctx.identity.publicKey], ports: ports)
        let compact = try doc.encoded(pretty: false)
        let cmdline = ctx.flavour.kernelParams.joined(separator: " ").count + compact.base64EncodedString().count
            + " nxc.host= nxc.deployment=".count + (ctx.nodes.map(\.node.count).max() ?? 0)
        guard cmdline < Self.commandLineLimit else {
            throw DeployError.tooLarge("the kernel command line with the deployment document (\(compact.count) bytes)", size: cmdline,
                                       limit: Self.commandLineLimit, hint: "use fewer nodes or shorter keys")
        }
        try writeAtomically(try doc.encoded(), to: ctx.deploymentFile)
        let compactPath = run + "/deployment.json"
        try writeAtomically(compact, to: compactPath)
        ctx.progress("deployment: \(ctx.deploymentFile) (inline on the kernel command line, \(cmdline) of \(Self.commandLineLimit) bytes)")

        var state = RuntimeState(composition: ctx.composition.name, flavour: ctx.flavour.name, startMethod: self.name,
                                 identity: ctx.identity, knownHosts: run + "/known_hosts", startedAt: Date(), processes: [])
        // The private network: a switch on a unix socket.
        let sock = run + "/switch"
        let switchPid = run + "/switch.pid"
        try Command.run(["vde_switch", "--sock", sock, "--mode", "0600", "--daemon", "--pidfile", switchPid,
                         "--numports", String(ctx.nodes.count + 4)], timeout: 20)
        guard let spid = Self.readPid(switchPid, timeout: 10) else {
            throw DeployError.processFailed("vde_switch", problem: "wrote no PID file \(switchPid) in 10 s")
        }
        // Who the PID is, so that `stop` never signals a process that later got the same PID.
        state.processes.append(.init(name: "vde_switch", pid: spid, node: nil, console: nil, identity: ProcessIdentity.of(spid)))
        try state.save(in: run)

        ctx.progress("starting \(ctx.nodes.count) VM(s): \(ctx.nodes.map(\.node).joined(separator: ", "))")
        var launchErrors: [(node: String, reason: String, log: String?)] = []
        for (i, n) in ctx.nodes.enumerated() {
            let console = run + "/\(n.node).console.log"
            let pidfile = run + "/\(n.node).pid"
            var env = ProcessInfo.processInfo.environment
            env["NXC_NODE"] = n.node
            env["NXC_INDEX"] = String(i + 1)
            env["NXC_DEPLOYMENT"] = compactPath
            env["NXC_SSH_PORT"] = String(ports[n.node] ?? 0)
            env["NXC_SWITCH"] = sock
            env["NXC_MEMORY"] = String(ctx.composition.role(named: n.role)?.memoryMiB ?? ctx.flavour.settings(as: QemuSettings.self).memory)
            env["NXC_CONSOLE"] = console
            env["NXC_PIDFILE"] = pidfile
            do {
                try Command.run([ctx.buildDirectory + "/launch.sh"], environment: env, log: run + "/\(n.node).qemu.log", timeout: 60)
                guard let pid = Self.readPid(pidfile, timeout: 10) else {
                    throw DeployError.processFailed("qemu", problem: "wrote no PID file in 10 s", log: run + "/\(n.node).qemu.log")
                }
                state.processes.append(.init(name: "qemu", pid: pid, node: n.node, console: console, identity: ProcessIdentity.of(pid)))
                try state.save(in: run)
            } catch {
                launchErrors.append((n.node, "QEMU did not start: \(error)", run + "/\(n.node).qemu.log"))
            }
        }
        if !launchErrors.isEmpty { throw DeployError.nodesDown(launchErrors) }

        let vms = Dictionary(uniqueKeysWithValues: state.processes.compactMap { p in p.node.map { ($0, p) } })
        let consoles = Dictionary(uniqueKeysWithValues: state.processes.compactMap { p in p.node.map { ($0, p.console) } })
        ctx.progress("waiting up to \(Int(ctx.timeout)) s for \(ctx.nodes.count) node(s) to answer SSH")
        let failures = await Readiness.waitForSSH(
            nodes: ctx.nodes.map(\.node), deployment: doc, identity: ctx.identity, knownHosts: state.knownHosts,
            timeout: ctx.timeout, alive: { vms[$0].map { Processes.ownership($0) == .ours } ?? false }, progress: ctx.progress)
        if !failures.isEmpty {
            throw DeployError.nodesDown(failures.map { ($0.node, $0.reason, consoles[$0.node] ?? nil) })
        }
        return (doc, state)
    }

    static func readPid(_ path: String, timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let t = try? String(contentsOfFile: path, encoding: .utf8),
               let pid = Int32(t.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 {
                return pid
            }
            usleep(50_000)
        } while Date() < deadline
        return nil
    }

    func stop(_ state: RuntimeState, runDirectory: String) -> [String] {
        var failed: [String] = []
        // VMs first, then the switch they are plugged into.
        let ordered = state.processes.filter { $0.node != nil } + state.processes.filter { $0.node == nil }
        for p in ordered where Processes.stop(p, grace: 5) == .failed {
            failed.append("\(p.node ?? p.name) (PID \(p.pid))")
        }
        try? FileManager.default.removeItem(atPath: runDirectory + "/switch")
        return failed
    }

    func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String] {
        guard let ep = deployment.nodes[node]?.ssh else { return ["false"] }
        return SSH.argv(endpoint: ep, identity: state.identity, knownHosts: state.knownHosts, command: command, interactive: interactive)
    }

    func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String {
        guard let p = state.processes.first(where: { $0.node == node }) else { return "unknown" }
        guard Processes.isRunning(p) else { return "stopped" }
        if let ep = deployment.nodes[node]?.ssh, Processes.sshBanner(host: ep.host, port: ep.port, timeout: 2) != nil {
            return "running"
        }
        return "booting"
    }
}
