import Foundation
import NXCDeployment
import NXCTestbed
import NXCArchive
import NXCBuild
import NXCComposition
import NXCFlavours
import NXCStore

/// Turns reserved hosts into the composition's nodes: pushes the kexec bundle over SSH, kexecs,
/// and waits until each host answers as its node. All hosts in parallel, bounded by --parallel.
struct KexecStart: StartMethod {
    var name: String { "kexec" }
    var bindsHosts: Bool { true }
    var summary: String { "reserved hosts (kexec)" }
    static let commandLineLimit = 2048
    static let bundleFiles = ["kernel", "initrd", "kexec.sh"]
    /// Where the bundle is staged on each host: a stable path (so a bundle already there is reused
    /// by size and SHA-256) in a folder root owns and only root may write, made by the check. Not
    /// under /tmp: another user of the host could make that name first, or link it elsewhere.
    static let remoteDirectory = "/var/lib/nxc/bundle"
    /// Argv prefix that runs a remote command as root (see KexecScript.asRoot).
    static let asRoot = ["sh", "-c", KexecScript.asRoot, "nxc-root"]

    func prepare(buildDirectory: String, composition: Composition, flavour: Flavour) throws -> [String] {
        let p = buildDirectory + "/kexec.sh"
        try writeAtomically(Data(KexecScript.text(composition: composition, flavour: flavour).utf8), to: p, mode: 0o755)
        return [p]
    }

    func start(_ ctx: StartContext) async throws -> (Deployment, RuntimeState) {
        guard let binding = ctx.binding else { throw DeployError.needsHosts(flavour: ctx.flavour.name) }
        for f in Self.bundleFiles where !FileManager.default.fileExists(atPath: ctx.buildDirectory + "/" + f) {
            throw DeployError.notBuilt(path: ctx.buildDirectory + "/" + f, flavour: ctx.flavour.name)
        }
        let fm = FileManager.default
        let run = ctx.runDirectory
        // Kept by --reuse (the nodes' host keys) and --resume (those, and the document the nodes hold).
        if !ctx.options.reuse && !ctx.options.resume { try? fm.removeItem(atPath: run) }
        try fm.createDirectory(atPath: run, withIntermediateDirectories: true)
        let env = TestbedSSH(identity: ctx.identity,
                             options: .init(sshUser: ctx.options.sshUser, sshOptions: ctx.options.sshOptions, reuse: ctx.options.reuse),
                             preKnownHosts: run + "/known_hosts.hosts", postKnownHosts: run + "/known_hosts",
                             controlDir: try TestbedSSH.controlDirectory())
        let started = Date()
        var staged = try Self.localBundle(folder: ctx.buildDirectory, run: run)
        staged.memory = Self.memoryNeeded(build: ctx.buildDirectory)
        staged.shared = try Self.sharedFolder(of: staged, ctx: ctx)
        // The bundle sent: the build's, or (nfs-store, after the check) one whose initrd has only the
        // NIC drivers of these hosts.
        let current = Current(staged)
        defer { current.value.archives.removeAll() }
        let progress = ctx.progress
        let policy = RetryPolicy(retries: ctx.options.retries)
        let timeout = ctx.timeout
        // nfs-store: the host that serves the system tree gets it (once) before any node is touched.
        let store = try Self.netrootStore(ctx)
        let storeFacts = try store?.host?.prepare(env: env, build: ctx.buildDirectory, timeout: timeout, policy: policy, progress: progress)
        let plan = ctx.options.resume ? try await ResumePlan.load(ctx: ctx, binding: binding, env: env, bundle: staged, timeout: timeout) : nil
        var spares = plan?.spares ?? binding.unused
        var retired: [TestbedRun] = []
        // Nodes still up (--resume) are left alone throughout.
        let check: @Sendable (inout TestbedRun) -> Void = { r in
            guard r.state != "up" else { return }
            let t0 = Date()
            Self.check(&r, env: env, bundle: current.value, timeout: timeout, policy: policy, progress: progress)
            r.seconds += Date().timeIntervalSince(t0)
        }
        let push: @Sendable (inout TestbedRun) -> Void = { r in
            guard !r.failed, r.state != "up" else { return }
            let t0 = Date()
            Self.push(&r, env: env, bundle: current.value, timeout: timeout, policy: policy, progress: progress)
            r.seconds += Date().timeIntervalSince(t0)
        }

        // 1. Connect, check, push — nothing changes on a host before this succeeds. A spare takes
        // the node of a host that fails here.
        var runs = plan?.runs ?? binding.entries.map { TestbedRun(entry: $0) }
        ctx.progress("checking \(runs.filter { $0.state != "up" }.count) host(s) over SSH (parallel \(ctx.options.parallel)"
                     + (spares.isEmpty ? ")" : ", \(spares.count) spare(s))"))
        runs = await Parallel.map(runs, limit: ctx.options.parallel) { r in
            var r = r
            check(&r)
            return r
        }
        runs = await Self.replaceFailed(runs, spares: &spares, retired: &retired, parallel: ctx.options.parallel, progress: progress, prepare: check)
        for w in Self.hardwareWarnings(runs) { ctx.progress("warning: " + w) }
        // nfs-store: the initrd with the NIC drivers these hosts use, and no other (not on --resume,
        // nor while spares are left, whose NICs are not known yet); the hosts are checked again for it.
        if plan == nil, spares.isEmpty,
           let (folder, drivers) = try Self.narrowedBundle(build: ctx.buildDirectory, runs: runs, into: run + "/bundle") {
            var narrowed = try Self.localBundle(folder: folder, run: run)
            narrowed.memory = staged.memory
            narrowed.shared = try Self.sharedFolder(of: narrowed, ctx: ctx)
            current.value = narrowed
            let recheckWith = narrowed
            let size = { (b: Bundle) in Double(b.fileSizes["initrd"] ?? 0) / 1_048_576 }
            ctx.progress(String(format: "initrd: with the NIC drivers of these hosts only (%@): %.1f MiB, not %.1f with every one",
                                drivers.joined(separator: ", "), size(narrowed), size(staged)))
            runs = await Parallel.map(runs, limit: ctx.options.parallel) { r in
                guard !r.failed, r.state != "up" else { return r }
                var r = r
                Self.recheck(&r, env: env, bundle: recheckWith, timeout: timeout, shared: true)
                return r
            }
        }
        let bundle = current.value
        // Hosts that lack the same files pass them on to each other (fed once from here); what a
        // host still lacks after that is pushed to it over SSH.
        var relayFed = 0
        for _ in 0..<(ctx.options.relay ? Self.relayRounds : 0) {
            let (relayed, fed) = await Self.relay(runs, env: env, bundle: bundle, timeout: timeout, parallel: ctx.options.parallel,
                                                  progress: progress)
            runs = relayed
            relayFed += fed
            if fed == 0 { break }
        }
        runs = await Parallel.map(runs, limit: ctx.options.parallel) { r in
            var r = r
            push(&r)
            return r
        }
        runs = await Self.replaceFailed(runs, spares: &spares, retired: &retired, parallel: ctx.options.parallel, progress: progress) { r in
            check(&r)
            push(&r)
        }
        bundle.archives.removeAll()
        ctx.progress(Self.distributionSummary(runs, bundle: bundle, relayFed: relayFed))
        // No spare left: a role that keeps its min goes on without the nodes whose hosts failed (not
        // on --resume: the nodes up hold a document with every node).
        let (kept, dropped) = plan == nil ? Self.settle(runs, minimum: binding.minimum) : (runs, [])
        for (r, m) in dropped {
            ctx.progress("\(m.node) is left out: \(r.entry.host) failed (\(r.error ?? "")) and no spare is left; role \(m.role) "
                         + "runs \(m.running) node(s), its min is \(m.minimum)")
        }
        runs = kept
        let saveReport: @Sendable ([TestbedRun], [TestbedRun], [TestbedHost]) throws -> Void = { runs, retired, spares in
            try Self.report(ctx, runs: runs, retired: retired, dropped: dropped, spares: spares, bundle: bundle, started: started,
                            earlier: plan?.report)
        }

        // 2. The deployment document: addresses recorded before the kexec (--resume: the one the nodes
        // up hold, byte for byte, with the nodes spares took as those spares are).
        let makeDocument: @Sendable ([TestbedRun]) -> Deployment = { runs in
            plan?.document(runs: runs, ctx: ctx)
                ?? Deployment.fromFacts(composition: ctx.composition.name, flavour: ctx.flavour.name, key: ctx.identity.publicKey, runs: runs)
        }
        // The bytes the nodes get: on --resume, the earlier document's own while it is unchanged.
        let bytes: @Sendable (Deployment) throws -> Data = { doc in
            try plan.flatMap { $0.previous == doc ? $0.compact : nil } ?? doc.encoded(pretty: false)
        }
        var doc = makeDocument(runs)
        let compact = try bytes(doc)
        // nfs-store: where the nodes mount the system (exported now; a dry run only says where).
        let (root, stateBase) = try Self.storeRoot(store, facts: storeFacts, runs: runs, doc: doc, env: env, build: ctx.buildDirectory,
                                                   composition: ctx.composition, dryRun: ctx.options.dryRun, progress: progress)
        // A node's words after the system's: its state folders on the store, if its role keeps some.
        let composition = ctx.composition
        let rootWords: @Sendable (TestbedRun) -> String = { r in
            ([root] + StoreHost.stateWords(base: stateBase, node: r.entry.node, paths: Self.statePaths(composition, role: r.entry.role)))
                .filter { !$0.isEmpty }.joined(separator: " ")
        }
        let maxNode = runs.map(\.entry.node.count).max() ?? 0
        let maxNet = root.isEmpty ? 0 : (doc.nodes.values.map { Self.netParams($0).count }.max() ?? 0) + (runs.map { rootWords($0).count }.max() ?? 0) + 2
        let inlineSize = ctx.flavour.kernelParams.joined(separator: " ").count + " nxc.host= nxc.deployment=".count
            + maxNode + compact.base64EncodedString().count + maxNet
        let (via, why) = try Self.chooseVia(forced: ctx.options.deployVia, inlineSize: inlineSize)
        ctx.progress("deployment: " + why)
        try writeAtomically(try doc.encoded(), to: ctx.deploymentFile)
        try writeAtomically(compact, to: run + "/deployment.json")

        var state = RuntimeState(composition: ctx.composition.name, flavour: ctx.flavour.name, startMethod: self.name,
                                 identity: ctx.identity, knownHosts: env.postKnownHosts, startedAt: Date(), processes: [])
        if ctx.options.dryRun {
            env.closeMasters((runs + retired).map(\.entry.host))
            // Hosts a resumed dry run left alone keep their lines of the earlier report.
            for i in runs.indices where !runs[i].failed && runs[i].state != "up" { runs[i].state = "ready (dry run)" }
            TestbedRun.report(runs + dropped.map(\.0) + retired, progress: ctx.progress, total: Date().timeIntervalSince(started))
            try saveReport(runs, retired, spares)
            let failed = runs.filter(\.failed)
            if !failed.isEmpty {
                throw DeployError.failedOn("the checks", failed.map { ("\($0.entry.host)", $0.error ?? "") }, unit: "host")
            }
            return (doc, state)
        }

        // 3. HTTP server for the document when it does not fit inline.
        var server: DeploymentServer?
        var url = ""
        if via == .http {
            let seen = runs.compactMap { $0.facts["ssh"]?.split(separator: " ").first.map(String.init) }.first
            guard let advertised = ctx.options.httpAddress ?? seen else {
                throw DeployError.badOption("--http-address", problem: "needed: the hosts' SSH did not say which address of this machine they see")
            }
            let s = try DeploymentServer(listen: ctx.options.httpListen ?? advertised, port: ctx.options.httpPort,
                                         document: compact, log: ctx.progress)
            s.start()
            server = s
            url = "http://\(advertised):\(s.port)\(s.path)"
            // The token stays off the terminal (and the CI logs that keep it).
            ctx.progress("deployment: serving http://\(advertised):\(s.port)/<token>/deployment.json until every node has it")
        }
        defer { server?.stop() }

        // 4. kexec, then wait for each host to come back as its node.
        let deploymentURL = url
        let pushDoc = run + "/deployment.json"
        let kexecAll: @Sendable ([TestbedRun], Deployment, Data) async -> [TestbedRun] = { runs, doc, compact in
            let documentSHA = sha256(bytes: Array(compact))
            return await Parallel.map(runs, limit: ctx.options.parallel) { r in
                guard !r.failed, r.state != "up" else { return r }
                var r = r
                let t0 = Date()
                Self.kexecAndWait(&r, env: env, doc: doc, pushDoc: pushDoc, url: deploymentURL, root: rootWords(r), sha: documentSHA, timeout: timeout,
                                  policy: policy, progress: progress)
                r.facts["document"] = documentSHA
                r.seconds += Date().timeIntervalSince(t0)
                return r
            }
        }
        runs = await kexecAll(runs, doc, compact)
        // 5. A host that did not come back gives its node to a spare, kexec'd with the document as it
        // then is; the nodes already up get that final document (nxc-agent update).
        if !spares.isEmpty && runs.contains(where: \.failed) {
            (runs, doc) = try await Self.replaceAfterKexec(runs, doc: doc, spares: &spares, retired: &retired, ctx: ctx, server: server,
                                                           makeDocument: makeDocument, kexecAll: kexecAll) { r in
                check(&r)
                push(&r)
            }
        }
        await Self.updateStale(runs, final: try bytes(doc), ctx: ctx, env: env)
        env.closeMasters((runs + retired).map(\.entry.host))
        if let server {
            let missing = runs.filter { !$0.failed && !server.fetchedNodes.contains($0.entry.node) }.map(\.entry.node)
            if !missing.isEmpty { ctx.progress("HTTP: not fetched by \(missing.joined(separator: ", "))") }
        }
        TestbedRun.report(runs + dropped.map(\.0) + retired, progress: ctx.progress, total: Date().timeIntervalSince(started))
        try saveReport(runs, retired, spares)
        state.startedAt = Date()
        try state.save(in: run)
        let failed = runs.filter(\.failed)
        if !failed.isEmpty {
            throw DeployError.nodesDown(failed.map { ("\($0.entry.node) on \($0.entry.host)", $0.error ?? "", nil) })
        }
        return (doc, state)
    }

    func stop(_ state: RuntimeState, runDirectory: String) -> [String] {
        // Nothing runs on this machine; the hosts stay the composition's nodes until their reservation ends.
        []
    }

    func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String] {
        TestbedSSH.remoteCommand(node: node, deployment: deployment, state: state, command: command, interactive: interactive)
    }

    func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String {
        TestbedSSH.nodeState(node: node, deployment: deployment, state: state)
    }
}
