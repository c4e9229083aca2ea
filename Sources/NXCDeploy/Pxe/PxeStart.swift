import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCComposition
import NXCFlavours
import NXCStore

/// Machines that boot from the network become the composition's nodes: nxc serves, over its own
/// HTTP server, an iPXE script per machine (by MAC address), pixiecore's API documents, the kernel,
/// the initrd and the deployment document; the site's DHCP points iPXE clients at it (or its
/// pixiecore at the API). Then it waits until each machine answers SSH as its node, and writes the
/// same per-host report as the other testbed methods. The machine file gives `HOST MAC` per line.
struct PxeStart: StartMethod {
    var name: String { "pxe" }
    var bindsHosts: Bool { true }
    var summary: String { "machines booting from the network (PXE, iPXE)" }
    static let bootFiles = ["kernel", "initrd", "boot.ipxe"]
    static let defaultPort = 8770

    var optionHelp: [StartFeature: String] {
        [.deployVia: "nxc's HTTP server serves the boot files and the document: --http-address is where the machines reach it (default: this machine's address toward the first one), --http-listen what it binds, --http-port its port (default \(Self.defaultPort)); always over HTTP",
         .install: "the machines boot this build, write the composition's g5k-image build (`nxc build -f g5k-image` first) to their disk (--install-disk, default the first fixed disk) with extlinux (BIOS), report, and reboot into it; nxc's server then tells their network boot to boot from the disk",
         .store: "--store-host: a machine that runs the kernel NFS server (not a node; left out of the machine file): nxc gives it the system tree once and exports it read-only to the machines' subnet, which their small initrd mounts; or --store-dir: a folder the machines mount over NFS themselves (from the site's file server): nxc writes the system there as one squashfs image and runs no NFS server; their URL for it comes from this machine's mount table, or --store-url nfs://SERVER/PATH"]
    }

    var featureKinds: [StartFeature: [String]] { [.store: [NetrootKind().name], .install: [RamdiskKind().name]] }

    func check(_ options: StartOptions) throws {
        if options.deployVia == .inline {
            throw DeployError.badOption("--deploy-via inline", problem: "pxe serves the document over HTTP with the boot files (the cmdline carries the machine's own network)")
        }
        if let p = options.httpPort, !(1...65535).contains(p) {
            throw DeployError.badOption("--http-port", problem: "\(p) is not a TCP port (1-65535)")
        }
        if let d = options.installDisk, Self.validDisk(d) == nil {
            throw DeployError.badOption("--install-disk", problem: "'\(FlavourRules.printable(d))' is not a disk name (vda, sda, nvme0n1, or /dev/NAME)")
        }
        if options.installDisk != nil, !options.install {
            throw DeployError.badOption("--install-disk", problem: "only with --install")
        }
        try KexecStart.checkStore(options)
        for (flag, value) in [("--http-address", options.httpAddress), ("--http-listen", options.httpListen)] {
            if let v = value, Self.ipv4(v) == nil {
                throw DeployError.badOption(flag, problem: "'\(FlavourRules.printable(v))' is not an IPv4 address")
            }
        }
    }

    func prepare(buildDirectory: String, composition: Composition, flavour: Flavour) throws -> [String] {
        let p = buildDirectory + "/boot.ipxe"
        try writeAtomically(Data(PxeBoot.genericScript.utf8), to: p, mode: 0o644)
        return [p]
    }

    func start(_ ctx: StartContext) async throws -> (Deployment, RuntimeState) {
        guard let binding = ctx.binding else { throw DeployError.needsHosts(flavour: ctx.flavour.name) }
        let fm = FileManager.default
        for f in Self.bootFiles where !fm.fileExists(atPath: ctx.buildDirectory + "/" + f) {
            throw DeployError.notBuilt(path: ctx.buildDirectory + "/" + f, flavour: ctx.flavour.name)
        }
        let source = ctx.options.machineFile ?? "the machine file"
        let noMAC = binding.entries.filter { $0.host.mac == nil }.map(\.host.description)
        guard noMAC.isEmpty else {
            throw DeployError.badInput(source, problem: "pxe binds nodes to machines by MAC address: give `HOST MAC` per line "
                                       + "(no MAC for \(noMAC.joined(separator: ", ")))")
        }
        // Where other nodes reach each one: the address its name has here, which the site's DHCP gives it.
        var addresses: [String: String] = [:]
        for e in binding.entries {
            guard let a = Self.ipv4(e.host.name) else {
                throw DeployError.badInput(source, problem: "\(e.host.description): not an IPv4 address, nor a name that resolves to one here")
            }
            addresses[e.node] = a
        }
        let run = ctx.runDirectory
        try? fm.removeItem(atPath: run)
        try fm.createDirectory(atPath: run, withIntermediateDirectories: true)
        // The boot files a site's own server (or pixiecore's API) can serve as they are, beside the document.
        let served = String(ctx.deploymentFile.dropLast(".json".count)) + ".boot"
        try? fm.removeItem(atPath: served)
        try fm.createDirectory(atPath: served + "/nodes", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: served + "/v1/boot", withIntermediateDirectories: true)
        let env = TestbedSSH(identity: ctx.identity, options: .init(sshUser: nil, sshOptions: ctx.options.sshOptions, reuse: false),
                             preKnownHosts: run + "/known_hosts.hosts", postKnownHosts: run + "/known_hosts",
                             controlDir: try TestbedSSH.controlDirectory())
        // A netroot build (pxe-nfs-store): the store host gets the tree (once) and exports it to the machines' subnet.
        var root: String?
        var stateBase: String?
        let netroot = try KexecStart.netrootStore(ctx)
        if case .folder(let folder) = netroot {
            root = try KexecStart.folderRoot(folder, build: ctx.buildDirectory, composition: ctx.composition,
                                             roles: binding.entries.map(\.role), progress: ctx.progress)
        }
        if let store = netroot?.host {
            let facts = try store.prepare(env: env, build: ctx.buildDirectory, timeout: ctx.timeout, policy: RetryPolicy(), progress: ctx.progress)
            guard let (address, subnets) = StoreHost.address(storeFacts: facts, nodeAddresses: binding.entries.compactMap { addresses[$0.node] }) else {
                throw DeployError.failedOn("the store host", [("\(store.host)", "none of its IPv4 addresses is in the subnet of a machine's "
                                                               + "address: the machines could not reach it")], unit: "host")
            }
            root = "nxc.root=" + (try store.export(env: env, address: address, subnets: subnets, progress: ctx.progress))
            // Roles that keep state (`state:`): a folder per node on the store, read-write.
            let keeping = binding.entries.filter { !KexecStart.statePaths(ctx.composition, role: $0.role).isEmpty }.map(\.node)
            if !keeping.isEmpty {
                stateBase = try store.exportState(env: env, composition: ctx.composition.name, nodes: keeping, address: address,
                                                  subnets: subnets, progress: ctx.progress)
            }
        }
        // --install: the composition's disk system, unpacked here for the machines.
        let install = ctx.options.install ? try Self.prepareInstall(ctx) : nil
        defer { if let install { try? fm.removeItem(atPath: install.tar) } }
        var nodes: [String: Deployment.Node] = [:]
        for e in binding.entries {
            nodes[e.node] = Deployment.Node(role: e.role, address: addresses[e.node],
                                            ssh: .init(host: e.host.name, port: e.host.port ?? 22))
        }
        let doc = Deployment(composition: ctx.composition.name, flavour: ctx.flavour.name, authorizedKeys: [ctx.identity.publicKey],
                             nodes: nodes, order: binding.entries.map(\.node))
        let compact = try doc.encoded(pretty: false)
        try writeAtomically(try doc.encoded(), to: ctx.deploymentFile)
        try writeAtomically(compact, to: run + "/deployment.json")
        let documentSHA = sha256(bytes: Array(compact))

        // The server, and what it serves: the generic script, each machine's script and pixiecore
        // document, the kernel and initrd from the build folder, the document under its token.
        guard let advertised = ctx.options.httpAddress ?? Self.localAddress(toward: addresses[binding.entries[0].node]!) else {
            throw DeployError.badOption("--http-address", problem: "needed: no address of this machine routes to \(binding.entries[0].host.description)")
        }
        let port = ctx.options.httpPort ?? Self.defaultPort
        let base = "http://\(advertised):\(port)"
        var routes: [String: DeploymentServer.Route] = [
            "/boot.ipxe": .data(Data(PxeBoot.genericScript.utf8), type: "text/plain"),
            "/kernel": .file(ctx.buildDirectory + "/kernel", type: "application/octet-stream"),
            "/initrd": .file(ctx.buildDirectory + "/initrd", type: "application/octet-stream"),
        ]
        // A netroot build: the initrd without NIC drivers, and each machine's own NIC segment.
        let nicSegments = fm.fileExists(atPath: ctx.buildDirectory + "/" + NetrootKind.baseInitrd)
        var resolver: (@Sendable (String) -> DeploymentServer.Route?)?
        if nicSegments {
            routes["/" + NetrootKind.baseInitrd] = .file(ctx.buildDirectory + "/" + NetrootKind.baseInitrd, type: "application/octet-stream")
            routes["/nic/all"] = .file(ctx.buildDirectory + "/" + NetrootKind.nicFile(NetrootKind.allNICs), type: "application/octet-stream")
            let nic = PxeNIC(text: (try? String(contentsOfFile: ctx.buildDirectory + "/" + NetrootKind.aliasesFile, encoding: .utf8)) ?? "")
            let build = ctx.buildDirectory
            let log = ctx.progress
            resolver = { path in
                guard path.hasPrefix("/nic/"), let ids = PxeNIC.pciIDs(busID: String(path.dropFirst("/nic/".count))) else { return nil }
                guard let module = nic.module(vendor: ids.vendor, device: ids.device),
                      FileManager.default.fileExists(atPath: build + "/" + NetrootKind.nicFile(module)) else {
                    log("PXE: no NIC driver of this build for PCI \(ids.vendor):\(ids.device); that machine gets every one (nic/all)")
                    return nil
                }
                return .file(build + "/" + NetrootKind.nicFile(module), type: "application/octet-stream")
            }
        }
        let token = DeploymentServer.randomToken()
        let documentURL = "\(base)/\(token)/deployment.json"
        let installURL = "\(base)/\(token)/install"
        if let install {
            routes["/\(token)/install/system.tar"] = .file(install.tar, type: "application/x-tar")
            routes["/\(token)/install/boot.params"] = .text(install.params)
        }
        let installWords = install?.words(url: installURL, disk: ctx.options.installDisk.flatMap(Self.validDisk)) ?? []
        try writeAtomically(Data(PxeBoot.genericScript.utf8), to: served + "/boot.ipxe")
        for e in binding.entries {
            let mac = e.host.mac!
            let cmdline = PxeBoot.commandLine(flavour: ctx.flavour, node: e.node, documentURL: documentURL, sha256: documentSHA, root: root,
                                              extra: installWords + StoreHost.stateWords(base: stateBase, node: e.node,
                                                                                         paths: KexecStart.statePaths(ctx.composition, role: e.role)))
            let script = Data(PxeBoot.nodeScript(node: e.node, role: e.role, composition: ctx.composition.name, base: base, cmdline: cmdline,
                                                 nicSegments: nicSegments).utf8)
            let api = try PxeBoot.pixiecoreDocument(node: e.node, role: e.role, composition: ctx.composition.name, base: base, cmdline: cmdline)
            routes["/nodes/\(PxeBoot.hyphenated(mac)).ipxe"] = .data(script, type: "text/plain")
            routes["/v1/boot/\(mac)"] = .data(api, type: "application/json")
            try writeAtomically(script, to: served + "/nodes/\(PxeBoot.hyphenated(mac)).ipxe")
            try writeAtomically(api, to: served + "/v1/boot/\(mac)")
        }
        let serving = try DeploymentServer(listen: ctx.options.httpListen ?? advertised, port: port, document: compact, routes: routes,
                                           token: token, reportPath: install == nil ? nil : "/\(token)/install/report", resolver: resolver,
                                           requestDeadline: 30, log: ctx.progress)
        serving.start()
        let servingSince = Date()
        defer { serving.stop() }
        ctx.progress("PXE: serving \(base)/ until every node is up (boot scripts and pixiecore documents also in \(served))")
        ctx.progress("PXE: point the DHCP server's boot file for iPXE clients at \(base)/boot.ipxe, or pixiecore at the API: pixiecore api \(base)/")
        ctx.progress("PXE: boot these machines from the network: "
                     + binding.entries.map { "\($0.host.mac!) (\($0.node))" }.joined(separator: ", "))

        // Wait for each machine to answer as its node.
        let started = Date()
        let timeout = ctx.timeout
        let progress = ctx.progress
        var runs = binding.entries.map { TestbedRun(entry: $0) }
        let installing = install != nil
        runs = await Parallel.map(runs, limit: max(1, runs.count)) { r in
            var r = r
            var since = servingSince
            if installing {
                // Booted from the network as the installer, then from its disk after it reported.
                guard let at = Self.waitForInstall(&r, serving: serving, timeout: timeout, progress: progress) else { return r }
                since = at
            }
            Self.waitForNode(&r, env: env, since: since, timeout: timeout, progress: progress)
            return r
        }
        env.closeMasters(runs.map(\.entry.host))
        let fetched = serving.fetchedNodes
        let missing = runs.filter { !$0.failed && !fetched.contains($0.entry.node) }.map(\.entry.node)
        if !missing.isEmpty { ctx.progress("HTTP: the document was not fetched by \(missing.joined(separator: ", "))") }
        TestbedRun.report(runs, progress: ctx.progress, total: Date().timeIntervalSince(started))
        let sent = serving.bytesSent
        let hosts = runs.map { r -> TestbedReport.Host in
            var h = TestbedReport.host(r, sizes: [:])
            h.bytesReceived = sent[addresses[r.entry.node] ?? ""] ?? 0
            h.receivedFrom = h.bytesReceived == 0 ? "none" : installing ? "nxc's HTTP server (network boot, then its disk system)"
                : "nxc's HTTP server (network boot)"
            return h
        }
        let report = TestbedReport(composition: ctx.composition.name, flavour: ctx.flavour.name, dryRun: false, started: started,
                                   seconds: Date().timeIntervalSince(started), hosts: hosts, missing: [],
                                   sparesLeft: binding.unused.map(\.description))
        try writeAtomically(try report.encoded(), to: ctx.reportFile)
        var state = RuntimeState(composition: ctx.composition.name, flavour: ctx.flavour.name, startMethod: self.name,
                                 identity: ctx.identity, knownHosts: env.postKnownHosts, startedAt: Date(), processes: [])
        state.startedAt = Date()
        try state.save(in: run)
        let failed = runs.filter(\.failed)
        if !failed.isEmpty {
            throw DeployError.nodesDown(failed.map { ("\($0.entry.node) on \($0.entry.host) (\($0.entry.host.mac ?? ""))", $0.error ?? "", nil) })
        }
        return (doc, state)
    }

    /// The boot phase: until the machine answers SSH as its node, booted since `since` (a machine still
    /// running an earlier start's node of the same name is not this one), or the timeout passes.
    static func waitForNode(_ r: inout TestbedRun, env: TestbedSSH, since: Date, timeout: Double, progress: @Sendable (String) -> Void) {
        let host = r.entry.host
        let node = r.entry.node
        r.state = "booting"
        r.phase(.boot, policy: RetryPolicy(retries: 0)) { r, _ in
            let deadline = Date().addingTimeInterval(timeout)
            var last = "no answer yet"
            while Date() < deadline {
                let argv = env.argv(host, afterKexec: true, command: ["cat", "/etc/nxc/hostname", "/proc/uptime", "/run/nxc/ready"], probing: true)
                if let (st, out) = try? Command.status(argv, timeout: 20) {
                    let lines = out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                    // Seconds since its boot, against seconds since nxc began serving (both measured now).
                    let uptime = lines.count > 1 ? Double(lines[1].split(separator: " ").first ?? "") : nil
                    let stale = uptime.map { $0 > Date().timeIntervalSince(since) + 5 } ?? true
                    if st == 0, lines.first == node, stale {
                        last = "answers as \(node), but booted before this start: an earlier start's machine, not booted from the network again"
                    } else if st == 0, lines.first == node {
                        // Learn the node's host key (made at its boot) for exec and connect.
                        _ = try? Command.status(env.argv(host, afterKexec: true, command: ["true"]), timeout: 20)
                        return .ok
                    } else {
                        last = st == 0 ? "answers as '\(lines.first ?? "")'" : (lines.last.map { String($0) } ?? "exit \(st)")
                    }
                }
                Thread.sleep(forTimeInterval: 2)
            }
            return .fail("did not answer as \(node) within \(Int(timeout)) s (last: \(last)); did it boot from the network?", .boot)
        }
        KexecStart.settleBoot(&r, progress: progress)
    }

    func stop(_ state: RuntimeState, runDirectory: String) -> [String] {
        // Nothing runs here once start returns; the machines stay the composition's nodes until they reboot.
        []
    }

    func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String] {
        TestbedSSH.remoteCommand(node: node, deployment: deployment, state: state, command: command, interactive: interactive)
    }

    func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String {
        TestbedSSH.nodeState(node: node, deployment: deployment, state: state)
    }

    /// An IPv4 address as it is, or the first IPv4 address a name resolves to here.
    static func ipv4(_ name: String) -> String? {
        var a = in_addr()
        if inet_pton(AF_INET, name, &a) == 1 { return name }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &res) == 0, let first = res else { return nil }
        defer { freeaddrinfo(res) }
        guard let sa = first.pointee.ai_addr else { return nil }
        return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
            var addr = sin.pointee.sin_addr
            var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            return inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count)).map { _ in String(cString: buf) }
        }
    }

    /// This machine's address on the route toward `address` (a UDP socket's connect sends nothing).
    static func localAddress(toward address: String) -> String? {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return nil }
        defer { close(s) }
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = in_port_t(UInt16(9).bigEndian)
        guard inet_pton(AF_INET, address, &to.sin_addr) == 1 else { return nil }
        let rc = withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { return nil }
        var me = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &me) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        var addr = me.sin_addr
        var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        return inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count)).map { _ in String(cString: buf) }
    }
}
