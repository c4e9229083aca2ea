import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCComposition
import NXCFlavours

/// Deploys the image on reserved hosts with Kadeploy (`kadeploy3 -a ENV -f MACHINES -k KEY`), reads
/// which hosts were deployed, then contextualises each over SSH in parallel: the deployment document
/// goes to the node and `nxc-agent boot --host NODE` makes it that node (hostname, keys, role,
/// services). Same per-host table and partial-failure behaviour as g5k-ramdisk.
struct KadeployStart: StartMethod {
    var name: String { "kadeploy" }
    var bindsHosts: Bool { true }
    var summary: String { "reserved hosts (Kadeploy)" }
    var optionHelp: [StartFeature: String] {
        [.reuse: "only contextualise them again, without Kadeploy",
         .kadeploy: "by default \(StartOptions.defaultKadeployCommand) on PATH"]
    }

    /// The Kadeploy client must be there before hosts are bound (not needed with --reuse).
    func check(_ options: StartOptions) throws {
        guard !options.reuse, Command.which(options.kadeployCommand) == nil else { return }
        throw DeployError.badOption(options.kadeployCommand == StartOptions.defaultKadeployCommand ? "kadeploy" : "--kadeploy",
                                    problem: "\(options.kadeployCommand) not found: run nxc on a Grid'5000 frontend, or give --kadeploy PROGRAM")
    }

    func prepare(buildDirectory: String, composition: Composition, flavour: Flavour) throws -> [String] { [] }

    /// Writes the document (stdin) where the agent reads it, then runs the agent as that node.
    static let contextualise = #"set -e; mkdir -p /etc/nxc; cat > /etc/nxc/deployment.given.json.part; "#
        + #"mv -f /etc/nxc/deployment.given.json.part /etc/nxc/deployment.given.json; "#
        + #"exec nxc-agent boot --host "$1" --deployment /etc/nxc/deployment.given.json"#

    /// The node's facts (addresses, routes), as the kexec check reports them.
    static let facts = #"echo "@addr $(ip -j address show | tr -d '\n')"; echo "@route $(ip -j route show | tr -d '\n')""#

    /// Hosts Kadeploy deployed and those it did not, from its -o/-n files, else from its output.
    static func outcome(okFile: String, koFile: String, output: String) -> (ok: Set<String>, ko: Set<String>) {
        func lines(_ p: String) -> Set<String>? {
            guard let t = try? String(contentsOfFile: p, encoding: .utf8) else { return nil }
            return Set(t.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        if let ok = lines(okFile) { return (ok, lines(koFile) ?? []) }
        // Kadeploy's summary: "The deployment is successful on nodes" / "The deployment failed on nodes",
        // each followed by one host per line.
        var ok = Set<String>(), ko = Set<String>()
        var section = 0
        for raw in output.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("The deployment is successful on nodes") { section = 1; continue }
            if line.hasPrefix("The deployment failed on nodes") { section = 2; continue }
            // A host, maybe followed by a reason ("node-9 (Reboot timeout)"); anything else ends the list.
            let first = line.split(separator: " ").first.map(String.init) ?? ""
            let isHost = !first.isEmpty && first.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }
                && first.first.map { $0.isLowercase || $0.isNumber } == true
            guard isHost else { section = 0; continue }
            if section == 1 { ok.insert(first) } else if section == 2 { ko.insert(first) }
        }
        return (ok, ko)
    }

    static func endpoint(_ h: TestbedHost) -> Deployment.SSHEndpoint { .init(host: h.name, port: h.port ?? 22) }

    /// How a host is named to Kadeploy: its name, with the port when the machine file gave one.
    static func kadeployName(_ h: TestbedHost) -> String { h.port.map { "\(h.name):\($0)" } ?? h.name }

    func start(_ ctx: StartContext) async throws -> (Deployment, RuntimeState) {
        guard let binding = ctx.binding else { throw DeployError.needsHosts(flavour: ctx.flavour.name) }
        let name = ctx.composition.name
        let env = ctx.buildDirectory + "/\(name).env.yaml"
        for f in [env, ctx.buildDirectory + "/\(name).tar.zst"] where !FileManager.default.fileExists(atPath: f) {
            throw DeployError.notBuilt(path: f, flavour: ctx.flavour.name)
        }
        let run = ctx.runDirectory
        let fm = FileManager.default
        try? fm.removeItem(atPath: run)
        try fm.createDirectory(atPath: run, withIntermediateDirectories: true)
        let started = Date()
        let knownHosts = run + "/known_hosts"
        var runs = binding.entries.map { TestbedRun(entry: $0) }

        // 1. Kadeploy (unless the hosts already run the image: --reuse contextualises them again).
        if ctx.options.reuse {
            ctx.progress("--reuse: the hosts already run this image; contextualising them again")
        } else {
            let machines = run + "/machines"
            try writeAtomically(Data(binding.entries.map { Self.kadeployName($0.host) + "\n" }.joined().utf8), to: machines)
            let key = run + "/key.pub"
            try writeAtomically(Data((ctx.identity.publicKey + "\n").utf8), to: key)
            let ok = run + "/deployed-ok", ko = run + "/deployed-ko"
            // The build folder's description names the image relative to itself; Kadeploy gets a copy
            // with the absolute path.
            let envRun = run + "/\(name).env.yaml"
            let envText = try String(contentsOfFile: env, encoding: .utf8)
            try writeAtomically(Data(KadeployEnvironment.absolutised(envText, directory: ctx.buildDirectory).utf8), to: envRun)
            let argv = [ctx.options.kadeployCommand, "-a", envRun, "-f", machines, "-k", key, "-o", ok, "-n", ko]
            ctx.progress("kadeploy: deploying \(runs.count) host(s) with \(envRun) (log: \(run)/kadeploy.log)")
            let (status, out) = try Command.status(argv, log: run + "/kadeploy.log", timeout: ctx.timeout)
            let result = Self.outcome(okFile: ok, koFile: ko, output: out)
            ctx.progress("kadeploy: exit \(status); deployed \(result.ok.count), failed \(result.ko.count)")
            for i in runs.indices {
                let n = Self.kadeployName(runs[i].entry.host)
                if result.ok.contains(n) {
                    runs[i].state = "deployed"
                } else {
                    runs[i].error = result.ko.contains(n) ? "Kadeploy failed to deploy it (\(run)/kadeploy.log)"
                                                          : "Kadeploy did not report it deployed (exit \(status); \(run)/kadeploy.log)"
                    runs[i].state = "failed"
                }
            }
            runs = runs.map { var r = $0; r.seconds = Date().timeIntervalSince(started); return r }
        }

        // 2. Facts of each deployed host (its addresses), over SSH as root (Kadeploy's -k key).
        let identity = ctx.identity
        let deadline = Date().addingTimeInterval(ctx.timeout)
        runs = await Parallel.map(runs, limit: ctx.options.parallel) { r in
            guard !r.failed else { return r }
            var r = r
            let ep = Self.endpoint(r.entry.host)
            var last = "no SSH banner"
            while Date() < deadline {
                if Processes.sshBanner(host: ep.host, port: ep.port, timeout: 5) != nil,
                   let (st, out) = try? Command.status(SSH.argv(endpoint: ep, identity: identity, knownHosts: knownHosts,
                                                                command: ["sh", "-c", Self.facts], interactive: false), timeout: 60) {
                    if st == 0 {
                        r.record(facts: out)
                        return r
                    }
                    last = out.split(separator: "\n").last.map(String.init) ?? "exit \(st)"
                }
                Thread.sleep(forTimeInterval: 2)
            }
            r.error = "no SSH as root after the deployment (\(last))"
            r.state = "failed"
            return r
        }

        // 3. The document: each node's address as its host has it (unique IPv4, default route first).
        var doc = Deployment.fromFacts(composition: name, flavour: ctx.flavour.name, key: ctx.identity.publicKey,
                                       runs: runs.filter { !$0.failed })
        for n in Array(doc.nodes.keys) { doc.nodes[n]?.interfaces = nil }
        doc.order = runs.map(\.entry.node)
        for r in runs where r.failed {
            doc.nodes[r.entry.node] = Deployment.Node(role: r.entry.role, address: nil, ssh: Self.endpoint(r.entry.host))
        }
        let pretty = try doc.encoded()
        try writeAtomically(pretty, to: ctx.deploymentFile)
        let docPath = run + "/deployment.json"
        try writeAtomically(pretty, to: docPath)

        // 4. Contextualise: the agent makes each host its node.
        let progress = ctx.progress
        runs = await Parallel.map(runs, limit: ctx.options.parallel) { r in
            guard !r.failed else { return r }
            var r = r
            let t0 = Date()
            let argv = SSH.argv(endpoint: Self.endpoint(r.entry.host), identity: identity, knownHosts: knownHosts,
                                command: ["sh", "-c", Self.contextualise, "sh", r.entry.node], interactive: false)
            do {
                _ = try Command.run(argv, timeout: 300, inputFile: docPath)
                r.state = "up"
                progress("\(r.entry.node) is up on \(r.entry.host)")
            } catch let e as CommandError {
                let tail = e.output.split(separator: "\n").suffix(3).joined(separator: " | ")
                r.error = "contextualisation failed (nxc-agent boot exit \(e.status)): \(tail)"
                r.state = "failed"
            } catch {
                r.error = "contextualisation failed: \(error)"
                r.state = "failed"
            }
            r.seconds += Date().timeIntervalSince(t0)
            return r
        }
        // Ready = answers SSH as its node with the agent done (the same check as for VMs).
        let up = runs.filter { !$0.failed }.map(\.entry.node)
        let failures = await Readiness.waitForSSH(nodes: up, deployment: doc, identity: identity, knownHosts: knownHosts,
                                                  timeout: max(30, deadline.timeIntervalSinceNow), alive: { _ in true },
                                                  progress: { _ in })
        for f in failures {
            if let i = runs.firstIndex(where: { $0.entry.node == f.node }) { runs[i].error = f.reason; runs[i].state = "failed" }
        }
        TestbedRun.report(runs, progress: ctx.progress, total: Date().timeIntervalSince(started))
        let state = RuntimeState(composition: name, flavour: ctx.flavour.name, startMethod: self.name,
                                 identity: ctx.identity, knownHosts: knownHosts, startedAt: Date(), processes: [])
        try state.save(in: run)
        let failed = runs.filter(\.failed)
        if !failed.isEmpty {
            throw DeployError.nodesDown(failed.map { ("\($0.entry.node) on \($0.entry.host)", $0.error ?? "", nil) })
        }
        return (doc, state)
    }

    func stop(_ state: RuntimeState, runDirectory: String) -> [String] {
        // The hosts keep the image until their reservation ends; nothing runs on this machine.
        []
    }

    func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String] {
        TestbedSSH.remoteCommand(node: node, deployment: deployment, state: state, command: command, interactive: interactive)
    }

    func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String {
        TestbedSSH.nodeState(node: node, deployment: deployment, state: state)
    }
}
