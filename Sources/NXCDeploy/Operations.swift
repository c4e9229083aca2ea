import Foundation
import NXCDeployment
import NXCBuild
import NXCComposition
import NXCFlavours

/// A running (or stopped) deployment as found on disk: document, runtime state, start method.
public struct ActiveDeployment: Sendable {
    public var deployment: Deployment
    public var state: RuntimeState?
    public var method: any StartMethod
    public var runDirectory: String
    public var file: String

    /// The deployment named by `-f`/composition, else the last one started in this project.
    public static func find(project: Project, flavour: String?, composition: String?) throws -> ActiveDeployment {
        var comp = composition, flav = flavour
        // Another composition than the current one, without -f: its one deployment, if it has one only.
        if let c = comp, flav == nil, project.currentDeployment()?.composition != c {
            let found = project.deployedFlavours(composition: c)
            if found.count > 1 {
                throw DeployError.badOption("--composition", problem: "\(c) has deployments for \(found.joined(separator: ", ")): give -f FLAVOUR")
            }
            flav = found.first
        }
        if comp == nil || flav == nil, let cur = project.currentDeployment() {
            comp = comp ?? cur.composition
            flav = flav ?? cur.flavour
        }
        guard let c = comp, let f = flav else {
            throw DeployError.noDeployment(project.directory)
        }
        let file = project.deploymentFile(composition: c, flavour: f)
        let doc = try Deployment.load(path: file)
        let run = project.runDirectory(composition: c, flavour: f)
        let state = RuntimeState.load(from: run)
        // The method that started the nodes stops them, whatever the flavour file says now (it may
        // have been edited or removed since); the flavour's method when nothing runs.
        let method: any StartMethod
        if let s = state, let m = Registry.startMethod(named: s.startMethod) {
            method = m
        } else {
            method = try Flavour.named(f, project: project.directory).startMethod
        }
        return ActiveDeployment(deployment: doc, state: state, method: method, runDirectory: run, file: file)
    }

    func requireState() throws -> RuntimeState {
        guard let s = state else {
            throw DeployError.notRunning(composition: deployment.composition, flavour: deployment.flavour)
        }
        return s
    }
}

/// `nxc start`, `exec`, `status`, `stop` as library calls; the commands only parse options.
public enum Operations {
    public static func start(project: Project, composition path: String?, flavour name: String, roles: [String],
                             identityFile: String?, timeout: Double?, options: StartOptions = StartOptions(),
                             progress: @escaping @Sendable (String) -> Void) async throws -> Deployment {
        var compositionPath = path
        var overrides = roles
        // `nxc start roles.yaml`: a role distribution file instead of a composition (read once the
        // composition is, so that a role it does not have is named with the file's line).
        var distributionFile: String?
        if let p = path, p.hasSuffix(".yaml") || p.hasSuffix(".yml"), RoleDistribution.isDistributionFile(p) {
            distributionFile = p
            compositionPath = nil
        }
        let composition = try Composition.load(path: project.compositionFile(compositionPath))
        if let d = distributionFile {
            overrides = try RoleDistribution.overrides(fromFile: d, composition: composition) + roles
        }
        let flavour = try Flavour.named(name, project: project.directory)
        let method = flavour.startMethod
        try checkFeatures(options.requestedFeatures, flavour: flavour, project: project)
        try method.check(options)
        let build = project.buildDirectory(composition: composition.name, flavour: flavour.name)
        var binding: HostBinding?
        let nodes: [(node: String, role: String)]
        if method.bindsHosts {
            let env = ProcessInfo.processInfo.environment
            guard let file = options.machineFile ?? env["OAR_NODEFILE"].flatMap({ $0.isEmpty ? nil : $0 }) else {
                throw DeployError.needsHosts(flavour: flavour.name)
            }
            var hosts = try HostList.load(path: file)
            // The store host (nfs-store) serves the nodes; in the machine file ($OAR_NODEFILE lists every host), it is not one.
            if let s = options.storeHost, let store = try HostList.parse(s, file: "--store-host").first {
                hosts.removeAll { $0.name == store.name && ($0.port ?? 22) == (store.port ?? 22) }
            }
            let b = try RoleDistribution.bind(composition, overrides: overrides, hosts: hosts, source: file)
            binding = b
            nodes = b.entries.map { ($0.node, $0.role) }
            progress("role binding (\(b.entries.count) node(s) on \(hosts.count) host(s) of \(file)):")
            for line in Table.render([["NODE", "ROLE", "HOST"]] + b.entries.map { [$0.node, $0.role, $0.host.description] }) {
                progress("  " + line)
            }
            if !b.unused.isEmpty { progress("hosts left alone: \(b.unused.map(\.description).joined(separator: ", "))") }
        } else {
            nodes = try RoleDistribution.resolve(composition, overrides: overrides)
        }
        // After the hosts and roles are known good: the project's key is made on first use.
        let identity = try SSHIdentity.resolve(explicit: identityFile, project: project)
        let ctx = StartContext(project: project, composition: composition, flavour: flavour, buildDirectory: build,
                               nodes: nodes, identity: identity, timeout: timeout ?? Double(flavour.bootTimeout),
                               options: options, binding: binding, progress: progress)
        if !options.dryRun { try project.setCurrent(composition: composition.name, flavour: flavour.name) }
        var doc: Deployment
        var state: RuntimeState
        do {
            (doc, state) = try await method.start(ctx)
        } catch DeployError.nodesDown(let down) where method.bindsHosts && !options.dryRun {
            // Reserved hosts that came up stay up when others did not: they get the deployment's
            // secret too, or their role services would wait for it in vain.
            try await installSecretOnNodesUp(ctx: ctx, method: method, down: down.map(\.node), progress: progress)
            throw DeployError.nodesDown(down)
        }
        state.compositionFile = composition.file
        if !options.dryRun {
            try state.save(in: ctx.runDirectory)
            // After the nodes answer, over the method's own channel (a method whose readiness waits
            // for role services sends it itself, before that wait: deliversSecret). The agent's boot
            // never waits for it (a role unit that needs it waits, bounded, for /run/nxc/secret).
            if !method.deliversSecret {
                try await NodeSecret.install(deployment: doc, state: state, method: method, runDirectory: ctx.runDirectory,
                                             keep: options.resume, progress: progress)
            }
        }
        return doc
    }

    /// Refuses the options the flavour's start method does not take, before anything starts, and
    /// names the flavours that take them.
    static func checkFeatures(_ requested: Set<StartFeature>, flavour: Flavour, project: Project) throws {
        let refused = requested.subtracting(flavour.startMethod.takes(artefact: flavour.artefact))
        guard !refused.isEmpty else { return }
        let takers = Flavour.all(project: project.directory)
            .filter { refused.isSubset(of: $0.startMethod.takes(artefact: $0.artefact)) }.map(\.name).sorted()
        throw DeployError.optionsNotTaken(flavour: flavour.name, options: refused.sorted().map(\.rawValue), takenBy: takers)
    }

    /// After a partial start on reserved hosts: the secret for the nodes the method saved as started
    /// and did not report down (reported as `NODE` or `NODE on HOST`).
    static func installSecretOnNodesUp(ctx: StartContext, method: any StartMethod, down: [String],
                                       progress: @escaping @Sendable (String) -> Void) async throws {
        guard var state = RuntimeState.load(from: ctx.runDirectory),
              let doc = try? Deployment.load(path: ctx.deploymentFile) else { return }
        state.compositionFile = ctx.composition.file
        let up = doc.order.filter { n in !down.contains { $0 == n || $0.hasPrefix(n + " on ") } }
        guard !up.isEmpty else { return }
        try state.save(in: ctx.runDirectory)
        try await NodeSecret.install(deployment: doc, state: state, method: method, runDirectory: ctx.runDirectory,
                                     nodes: up, keep: ctx.options.resume, progress: progress)
    }

    /// Runs `command` on every node of `target` (a node or a role); returns the worst exit status.
    public static func exec(_ active: ActiveDeployment, target: String, command: [String]) async throws -> Int32 {
        let state = try active.requireState()
        let nodes = try active.deployment.resolve(target)
        let driven = ProcessInfo.processInfo.environment[DriverMarks.environmentFlag] == "1"
        let method = active.method
        let deployment = active.deployment
        return try await run(on: nodes, driven: driven) { node in
            method.remoteCommand(node: node, deployment: deployment, state: state, command: command, interactive: false)
        }
    }

    /// One node: the command's stdout and stderr are this process's own, untouched, also under
    /// `nxc driver`, so that a script's `$(nxc exec db -- redis-cli get k)` is what the command
    /// printed. Several nodes: every line says its node. Under the driver, each failed node is also
    /// marked on stderr (never stdout), for the driver's summary.
    static func run(on nodes: [String], driven: Bool, argv: @escaping @Sendable (String) -> [String]) async throws -> Int32 {
        @Sendable func mark(_ node: String, _ status: Int32) {
            if driven && status != 0 { FileHandle.standardError.write(Data("\(DriverMarks.failureMark)\(node) exit \(status)\n".utf8)) }
        }
        if nodes.count == 1 {
            let st = try runInherited(argv(nodes[0]))
            mark(nodes[0], st)
            return st
        }
        let printer = LinePrinter()
        let statuses = await Parallel.map(nodes, limit: 64) { node -> Int32 in
            let st = (try? runPrefixed(argv(node), prefix: node, printer: printer)) ?? 255
            mark(node, st)
            return st
        }
        return statuses.max() ?? 0
    }

    /// Runs argv with this process's stdin/stdout/stderr; returns its exit status.
    public static func runInherited(_ argv: [String]) throws -> Int32 {
        try Command.runAttached(argv)
    }

    static func runPrefixed(_ argv: [String], prefix: String, printer: LinePrinter) throws -> Int32 {
        let buffer = LineSplitter { printer.print("\(prefix): \($0)") }
        let (status, _) = try Command.status(argv, timeout: 30 * 24 * 3600, onOutput: { buffer.feed($0) })
        buffer.flush()
        return status
    }

    public struct NodeStatus: Codable, Sendable {
        public var node: String
        public var role: String
        public var address: String
        public var ssh: String?
        public var state: String
    }

    public struct Status: Codable, Sendable {
        public var composition: String
        public var flavour: String
        public var deployment: String
        public var startedAt: Date?
        public var uptimeSeconds: Int?
        public var nodes: [NodeStatus]
    }

    public static func status(_ active: ActiveDeployment) -> Status {
        let d = active.deployment
        let nodes = d.order.compactMap { name -> NodeStatus? in
            guard let n = d.nodes[name] else { return nil }
            let st = active.state.map { active.method.nodeState(node: name, deployment: d, state: $0) } ?? "stopped"
            return NodeStatus(node: name, role: n.role, address: n.address ?? active.state?.addresses?[name] ?? "-",
                              ssh: n.ssh.map { "\($0.user)@\($0.host):\($0.port)" }, state: st)
        }
        let up = active.state.flatMap { s in nodes.contains { $0.state != "stopped" } ? Int(Date().timeIntervalSince(s.startedAt)) : nil }
        return Status(composition: d.composition, flavour: d.flavour, deployment: active.file,
                      startedAt: active.state?.startedAt, uptimeSeconds: up, nodes: nodes)
    }

    /// Stops everything `start` started; returns what could not be stopped. A recorded PID that is
    /// no longer the process `start` started (reused, or from before a reboot), or that an older
    /// state file cannot vouch for, is left alone, and `notice` says so.
    public static func stop(_ active: ActiveDeployment,
                            notice: (String) -> Void = { FileHandle.standardError.write(Data("nxc: \($0)\n".utf8)) }) -> [String] {
        guard let state = active.state else { return [] }
        for p in state.processes {
            switch Processes.ownership(p) {
            case .notOurs:
                notice("PID \(p.pid) (\(p.label)) is no longer the process nxc started; not signalled")
            case .unverifiable:
                notice("PID \(p.pid) (\(p.label)): \(RuntimeState.path(in: active.runDirectory)) was written by an older nxc "
                       + "that did not record who the process was; not signalled (if it is still nxc's: kill \(p.pid))")
            case .ours, .gone:
                break
            }
        }
        let failed = active.method.stop(state, runDirectory: active.runDirectory)
        if failed.isEmpty {
            try? FileManager.default.removeItem(atPath: RuntimeState.path(in: active.runDirectory))
            // The deployment's secret lives as long as the deployment.
            try? FileManager.default.removeItem(atPath: active.runDirectory + "/" + NodeSecret.fileName)
        }
        return failed
    }
}

/// Serialises output lines of parallel commands, each prefixed with its node.
final class LinePrinter: @unchecked Sendable {
    private let lock = NSLock()
    func print(_ line: String) {
        lock.lock()
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        lock.unlock()
    }
}
