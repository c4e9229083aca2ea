import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCComposition
import NXCFlavours

/// Runs one systemd-nspawn container per node on this machine, without a daemon: the build's tree
/// is unpacked once per start and shared read-only, each node boots it through an overlay with a
/// writable layer of its own, in its own network namespace on a private bridge (NspawnHost) and its
/// own cgroup. `exec` and `connect` enter the node's namespaces with nsenter; `stop` sends
/// systemd-nspawn SIGTERM (a clean shutdown of the node's systemd), by PID.
struct NspawnStart: StartMethod {
    var name: String { "nspawn" }
    var bindsHosts: Bool { false }
    var summary: String { "systemd-nspawn containers on this machine" }
    /// Readiness waits for role services, which may wait for the secret: sent as soon as the nodes run.
    var deliversSecret: Bool { true }

    /// Where a node finds its deployment document (bound read-only from the run folder).
    static let deploymentPath = "/etc/nxc/deployment.given.json"
    static let tools = [("systemd-nspawn", "systemd-container"), ("ip", "iproute2"), ("nsenter", "util-linux"),
                        ("bsdtar", "libarchive-tools")]

    func prepare(buildDirectory: String, composition: Composition, flavour: Flavour) throws -> [String] { [] }

    static func deployment(composition: String, flavour: String, nodes: [(node: String, role: String)],
                           keys: [String], host: NspawnHost) -> Deployment {
        var map: [String: Deployment.Node] = [:]
        for (i, n) in nodes.enumerated() {
            let addr = NspawnHost.address(index: i + 1)
            // No interfaces: NspawnHost puts the address on before the node boots.
            map[n.node] = Deployment.Node(role: n.role, address: addr)
        }
        return Deployment(composition: composition, flavour: flavour, authorizedKeys: keys, nodes: map, order: nodes.map(\.node))
    }

    func start(_ ctx: StartContext) async throws -> (Deployment, RuntimeState) {
        guard geteuid() == 0 else {
            throw DeployError.needsRoot(flavour: ctx.flavour.name, because: "systemd-nspawn, overlay mounts, network namespaces and cgroups need it")
        }
        for (tool, pkg) in Self.tools where Command.which(tool) == nil { throw DeployError.toolMissing(tool, package: pkg) }
        let archives = [ctx.buildDirectory + "/system.tar.zst", ctx.buildDirectory + "/payload.tar"]
        for a in archives where !FileManager.default.fileExists(atPath: a) {
            throw DeployError.notBuilt(path: a, flavour: ctx.flavour.name)
        }
        guard ctx.nodes.count <= 250 else { throw DeployError.tooManyNodes(count: ctx.nodes.count, limit: 250, unit: "containers") }
        let run = ctx.runDirectory
        guard !run.contains(":") else {
            throw DeployError.badInput(run, problem: "the run folder's path holds a ':', which systemd-nspawn's --overlay= cannot take; move the project")
        }
        if let old = RuntimeState.load(from: run), old.processes.contains(where: { Processes.isRunning($0) }) {
            throw DeployError.alreadyRunning("\(ctx.composition.name) (\(ctx.flavour.name)) is already running; `nxc stop` it first")
        }
        let host = NspawnHost(runDirectory: run)
        // What an earlier start left (a crash, a failed stop): its namespaces and cgroups.
        _ = host.deleteNetwork()
        _ = host.deleteCgroups()
        let fm = FileManager.default
        try? fm.removeItem(atPath: run)
        try fm.createDirectory(atPath: run + "/tree", withIntermediateDirectories: true)

        // 1. The tree: system, then payload over it, with owners (numeric), modes and attributes.
        let t0 = Date()
        for a in archives {
            do { try Command.run(["bsdtar", "-x", "-p", "--numeric-owner", "-f", a, "-C", run + "/tree"], timeout: 900) } catch {
                throw DeployError.commandFailed("unpacking \(a) into \(run)/tree", underlying: error)
            }
        }
        ctx.progress(String(format: "tree: unpacked into %@/tree in %.1f s", run, Date().timeIntervalSince(t0)))

        // 2. Deployment, network, state.
        let doc = Self.deployment(composition: ctx.composition.name, flavour: ctx.flavour.name, nodes: ctx.nodes,
                                  keys: [ctx.identity.publicKey], host: host)
        try writeAtomically(try doc.encoded(), to: ctx.deploymentFile)
        try writeAtomically(try doc.encoded(), to: run + "/deployment.json")
        var state = RuntimeState(composition: ctx.composition.name, flavour: ctx.flavour.name, startMethod: self.name,
                                 identity: ctx.identity, knownHosts: run + "/known_hosts", startedAt: Date(), processes: [])
        state.addresses = Dictionary(uniqueKeysWithValues: ctx.nodes.enumerated().map { ($1.node, NspawnHost.address(index: $0 + 1)) })
        try state.save(in: run)
        try host.createNetwork(nodes: ctx.nodes.map(\.node))

        // 3. One container per node.
        ctx.progress("starting \(ctx.nodes.count) container(s): \(ctx.nodes.map(\.node).joined(separator: ", "))")
        var launchErrors: [(node: String, reason: String, log: String?)] = []
        for n in ctx.nodes {
            let console = run + "/\(n.node).console.log"
            do {
                let pid = try launch(node: n.node, run: run, host: host, console: console)
                state.processes.append(.init(name: "systemd-nspawn", pid: pid, node: n.node, console: console, identity: ProcessIdentity.of(pid)))
                try state.save(in: run)
            } catch {
                launchErrors.append((n.node, "systemd-nspawn did not start: \(error)", console))
            }
        }
        if !launchErrors.isEmpty { throw DeployError.nodesDown(launchErrors) }
        let booting = state
        for p in state.processes {
            guard Self.leader(p, waitingUpTo: 30) != nil else {
                throw DeployError.nodesDown([(p.node ?? "?", "its systemd did not start within 30 s", p.console)])
            }
        }

        // 4. The secret, then every node's agent and role services.
        try await NodeSecret.install(deployment: doc, state: booting, method: self, runDirectory: run, progress: ctx.progress)
        ctx.progress("waiting up to \(Int(ctx.timeout)) s for \(ctx.nodes.count) node(s): agent done, role services active")
        let composition = ctx.composition
        let consoles = Dictionary(uniqueKeysWithValues: state.processes.compactMap { p in p.node.map { ($0, p.console ?? "") } })
        try await Readiness.poll(ctx.nodes, timeout: ctx.timeout, progress: ctx.progress, log: { consoles[$0] }) { node, role in
            Readiness.agentAndServices(node: node, units: composition.role(named: role)?.services.map(\.value) ?? [],
                                       logHint: consoles[node] ?? "", run: { argv in
                                           try? Command.status(self.remoteCommand(node: node, deployment: doc, state: booting,
                                                                                  command: argv, interactive: false), timeout: 30)
                                       }, machineState: { self.nodeState(node: node, deployment: doc, state: booting) })
        }
        state.startedAt = Date()
        try state.save(in: run)
        return (doc, state)
    }

    /// Starts systemd-nspawn for `node` in the background, in the node's cgroup and a session of its
    /// own (a terminal's Ctrl-C does not reach it), console to `console`; returns its PID.
    func launch(node: String, run: String, host: NspawnHost, console: String) throws -> Int32 {
        let nodeDir = run + "/nodes/" + node
        let upper = nodeDir + "/upper"
        try FileManager.default.createDirectory(atPath: upper + "/etc", withIntermediateDirectories: true)
        // The tree's /etc/hostname would override --hostname.
        try writeAtomically(Data((node + "\n").utf8), to: upper + "/etc/hostname")
        let tree = run + "/tree"
        let nspawn = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--boot",
                      "--directory=" + tree, "--overlay=\(tree):\(upper):/",
                      "--machine=" + host.machine(node: node), "--hostname=" + node,
                      "--setenv=NXC_HOST=" + node, "--setenv=NXC_DEPLOYMENT_FILE=" + Self.deploymentPath,
                      "--bind-ro=\(run)/deployment.json:\(Self.deploymentPath)",
                      "--network-namespace-path=/run/netns/" + host.namespace(node: node),
                      "--console=read-only", "--resolv-conf=off", "--timezone=off", "--link-journal=no"]
        let procs = try host.createCgroups(node: node)
        let pidfile = nodeDir + "/nspawn.pid"
        // A fixed script, arguments after it: join the cgroups, start nspawn detached, say its PID.
        let script = #"""
            set -eu
            console=$1; pidfile=$2; shift 2
            while [ "$1" != "--" ]; do echo $$ > "$1"; shift; done
            shift
            setsid "$@" </dev/null >>"$console" 2>&1 &
            echo $! > "$pidfile"
            """#
        try Command.run(["sh", "-c", script, "sh", console, pidfile] + procs + ["--"] + nspawn, timeout: 30)
        guard let text = try? String(contentsOfFile: pidfile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            throw DeployError.processFailed("systemd-nspawn's launcher", problem: "wrote no PID in \(pidfile)", log: console)
        }
        // Who the PID is is recorded once setsid has become systemd-nspawn (exec keeps the PID).
        let deadline = Date().addingTimeInterval(10)
        while ProcessIdentity.of(pid)?.argv0 != "systemd-nspawn" {
            guard Date() < deadline, Processes.isAlive(pid) else {
                throw DeployError.processFailed("systemd-nspawn", problem: "PID \(pid) did not become it in 10 s", log: console)
            }
            usleep(20_000)
        }
        return pid
    }

    /// The container's PID 1 (systemd-nspawn's child), once it runs systemd; nil while it does not.
    static func leader(_ p: RuntimeState.Process, waitingUpTo seconds: Double = 0) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            guard Processes.ownership(p) == .ours else { return nil }
            let children = (try? String(contentsOfFile: "/proc/\(p.pid)/task/\(p.pid)/children", encoding: .utf8)) ?? ""
            if let child = children.split(separator: " ").first.flatMap({ Int32($0) }),
               (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8))?.hasPrefix("systemd") == true {
                return child
            }
            if seconds > 0 { usleep(100_000) }
        } while Date() < deadline
        return nil
    }

    static func container(_ node: String, in state: RuntimeState) -> RuntimeState.Process? {
        state.processes.first { $0.node == node && $0.name == "systemd-nspawn" }
    }

    func stop(_ state: RuntimeState, runDirectory: String) -> [String] {
        var failed: [String] = []
        // SIGTERM: nspawn asks the node's systemd to shut down; the store tree takes about 3 s.
        for p in state.processes where Processes.stop(p, grace: 30) == .failed {
            failed.append("\(p.node ?? p.name) (PID \(p.pid))")
        }
        let host = NspawnHost(runDirectory: runDirectory)
        failed += host.deleteNetwork()
        failed += host.deleteCgroups()
        if failed.isEmpty {
            // The unpacked tree and the nodes' writable layers (no container uses them any more).
            for dir in ["tree", "nodes"] { try? FileManager.default.removeItem(atPath: runDirectory + "/" + dir) }
        }
        return failed
    }

    func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String] {
        guard let p = Self.container(node, in: state), let leader = Self.leader(p) else {
            return ["sh", "-c", #"echo "nxc: node $1 is not running" >&2; exit 255"#, "sh", node]
        }
        let term = ProcessInfo.processInfo.environment["TERM"].flatMap { $0.isEmpty ? nil : $0 } ?? "dumb"
        // Into every namespace of the node's PID 1, with a clean environment (not nxc's).
        let enter = ["nsenter", "--target", String(leader), "--all", "--", "env", "-i",
                     "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=" + term]
        if command.isEmpty {
            // A terminal of the node's own (script(1) makes a pty in the node's devpts).
            return enter + (interactive ? ["script", "-qec", "/bin/bash -l", "/dev/null"] : ["/bin/bash", "-l"])
        }
        return enter + command
    }

    func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String {
        guard let p = Self.container(node, in: state), Processes.isRunning(p) else { return "stopped" }
        guard let leader = Self.leader(p) else { return "booting" }
        return FileManager.default.fileExists(atPath: "/proc/\(leader)/root/run/nxc/ready") ? "running" : "booting"
    }
}
