import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCFlavours
import NXCStore
import NXCComposition

/// The nfs-store flavour's server: a host of the reservation (`--store-host`) that runs the kernel
/// NFS server. nxc gives it the system tree once (`/srv/nxc/store/<tree>`, beside earlier ones, so
/// that nodes on an older tree are not disturbed by a rebuild), exports it read-only to the nodes'
/// subnet, and the nodes mount it as `nfs://ADDRESS/srv/nxc/store/<tree>` (`nxc.root=`).
struct StoreHost: Sendable {
    static let base = "/srv/nxc/store"
    let host: TestbedHost
    let tree: NetrootKind.Description

    /// The bundle's tree, when the build folder holds one (a netroot build).
    static func description(build: String) throws -> NetrootKind.Description? {
        let path = build + "/" + NetrootKind.describeName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            let d = try JSONDecoder().decode(NetrootKind.Description.self, from: data)
            guard d.tree.count == 32, d.tree.allSatisfy(\.isHexDigit), d.sha256.count == 64, d.archive == NetrootKind.systemName else {
                throw DeployError.badInput(path, problem: "not a tree description nxc wrote")
            }
            return d
        } catch let e as DeployError { throw e } catch {
            throw DeployError.badInput(path, problem: "not a tree description nxc wrote (\(error))")
        }
    }

    /// Facts of the store host: the NFS server's tools and threads, whether it holds the tree, its
    /// free space (kB) and addresses. $1 the store folder, $2 the tree's name.
    static let checkScript = KexecScript.stage + "\n" + #"""
        PATH=$PATH:/usr/sbin:/sbin
        base=$1; name=$2
        stage "$base"
        echo "@exportfs $(command -v exportfs || echo none)"
        echo "@zstd $(command -v zstd || echo none)"
        echo "@nfsd $(cat /proc/fs/nfsd/threads 2>/dev/null || echo 0)"
        if [ -f "$base/$name.tree" ] && [ -d "$base/$name" ]; then echo "@tree $(cat "$base/$name.tree")"; fi
        echo "@free $(df -Pk "$base" | awk 'NR == 2 {print $4}')"
        echo "@addr $(ip -j address show 2>/dev/null | tr -d '\n')"
        """#

    /// Receives the tree's archive on stdin, checks its SHA-256 ($3), unpacks it beside the others
    /// and renames it into place; the marker `<tree>.tree` holds the SHA-256 once it is whole.
    static let receiveScript = KexecScript.stage + "\n" + #"""
        set -e
        base=$1; name=$2; want=$3
        stage "$base"
        cd "$base"
        rm -rf ".$name.part" ".$name.tar.zst" "$name.tree"
        cat > ".$name.tar.zst"
        got=$(sha256sum < ".$name.tar.zst" | cut -d' ' -f1)
        if [ "$got" != "$want" ]; then
          rm -f ".$name.tar.zst"; echo "nxc: the system tree arrived with SHA-256 $got, not $want" >&2; exit 4
        fi
        mkdir ".$name.part"
        zstd -q -dc ".$name.tar.zst" | tar -x -p --numeric-owner -C ".$name.part"
        rm -f ".$name.tar.zst"
        chmod 0755 ".$name.part"
        rm -rf "$name"
        mv ".$name.part" "$name"
        echo "$want" > "$name.tree"
        echo "@tree $want"
        """#

    /// Exports the tree read-only to the clients ($4…, CIDR subnets), with earlier clients of the
    /// same tree kept, in /etc/exports.d (kept across the NFS server's restarts); $3 is its fsid.
    static let exportScript = #"""
        set -e
        PATH=$PATH:/usr/sbin:/sbin
        base=$1; name=$2; fsid=$3; shift 3
        mkdir -p /etc/exports.d
        f=/etc/exports.d/nxc-$name.exports
        umask 022
        { [ -f "$f" ] && cat "$f"
          for c in "$@"; do echo "$base/$name $c(ro,no_root_squash,no_subtree_check,insecure,fsid=$fsid)"; done
        } | sort -u > "$f.part"
        mv -f "$f.part" "$f"
        exportfs -ra
        exportfs | grep -q "^$base/$name" || { echo "nxc: exportfs does not list $base/$name" >&2; exit 5; }
        echo "@exported $*"
        """#

    /// Per-node state (roles' `state:` folders): /srv/nxc/state/COMPOSITION/NODE on the store host,
    /// made here ($4…: node names), the composition's folder exported read-write to the clients
    /// ($3: its fsid; the clients after `--`), kept in /etc/exports.d like the tree's export.
    static let stateBase = "/srv/nxc/state"
    static let stateScript = #"""
        set -e
        PATH=$PATH:/usr/sbin:/sbin
        base=$1; name=$2; fsid=$3; shift 3
        umask 022
        while [ $# -gt 0 ] && [ "$1" != -- ]; do mkdir -p "$base/$name/$1"; shift; done
        shift
        mkdir -p /etc/exports.d
        f=/etc/exports.d/nxc-state-$name.exports
        { [ -f "$f" ] && cat "$f"
          for c in "$@"; do echo "$base/$name $c(rw,no_root_squash,no_subtree_check,insecure,fsid=$fsid)"; done
        } | sort -u > "$f.part"
        mv -f "$f.part" "$f"
        exportfs -ra
        exportfs | grep -q "^$base/$name" || { echo "nxc: exportfs does not list $base/$name" >&2; exit 5; }
        echo "@state $base/$name"
        """#

    /// Makes each node's state folder and exports the composition's to `subnets` (read-write);
    /// returns the URL the nodes' folders are under (`URL/NODE`).
    func exportState(env: TestbedSSH, composition: String, nodes: [String], address: String, subnets: [String],
                     progress: @Sendable (String) -> Void) throws -> String {
        let fsid = Self.uuid(hex: sha256(bytes: Array("nxc-state/\(composition)".utf8)))
        let argv = env.argv(host, afterKexec: false, command: KexecStart.asRoot + ["sh", "-c", Self.stateScript, "sh", Self.stateBase, composition, fsid]
                            + nodes + ["--"] + subnets)
        do { _ = try Command.run(argv, timeout: 120) } catch {
            throw DeployError.failedOn("the store host", [("\(host)", "the nodes' state folders under \(Self.stateBase)/\(composition): \(error)")],
                                       unit: "host")
        }
        let url = "nfs://\(address)\(Self.stateBase)/\(composition)"
        progress("\(host): store host, keeps the nodes' state folders read-write for \(subnets.joined(separator: ", ")): \(url)/NODE")
        return url
    }

    /// The kernel command line words of a node with state folders (none without).
    static func stateWords(base: String?, node: String, paths: [String]) -> [String] {
        guard let base, !paths.isEmpty else { return [] }
        return ["nxc.state=\(base)/\(node)", "nxc.state_paths=" + paths.joined(separator: ",")]
    }

    /// The tree's fsid (a UUID from its name): NFS needs one for a tree on tmpfs, and it stays the
    /// same across restarts.
    var fsid: String { Self.uuid(hex: tree.tree) }

    /// The first 32 hex digits of `hex` as a UUID (8-4-4-4-12).
    static func uuid(hex: String) -> String {
        let h = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(h[$0]) }.joined(separator: "-")
    }

    /// Connects, checks, and gives the store host the tree if it lacks it. Returns its facts.
    func prepare(env: TestbedSSH, build: String, timeout: Double, policy: RetryPolicy,
                 progress: @Sendable (String) -> Void) throws -> [String: String] {
        var r = TestbedRun(entry: .init(node: "store", role: "store", host: host))
        let argv = env.argv(host, afterKexec: false, command: KexecStart.asRoot + ["sh", "-c", Self.checkScript, "sh", Self.base, tree.tree])
        var out = ""
        let ok = r.phase(.connect, policy: policy, progress: progress) { _, _ in
            let checked = try? Command.status(argv, timeout: max(60, timeout))
            if let (st, o) = checked, st == 0 { out = o; return .ok }
            if let (st, o) = checked, st != 255 {
                return .fail("check failed (exit \(st)): \(o.split(separator: "\n").last.map(String.init) ?? "no output")", .refused)
            }
            return .retry("unreachable over SSH: " + (checked?.1.split(whereSeparator: \.isNewline).last.map(String.init) ?? "no answer"),
                          .unreachable)
        }
        guard ok else { throw DeployError.failedOn("the store host", [("\(host)", r.error ?? "")], unit: "host") }
        r.record(facts: out)
        let refuse = { (why: String) in DeployError.failedOn("the store host", [("\(host)", why)], unit: "host") }
        if r.facts["exportfs"] == "none" { throw refuse("exportfs is not installed: the store host runs the kernel NFS server (apt-get install nfs-kernel-server)") }
        if (Int(r.facts["nfsd"] ?? "") ?? 0) <= 0 { throw refuse("the kernel NFS server is not running (systemctl start nfs-server)") }
        if r.facts["tree"] == tree.sha256 {
            progress("\(host): store host, holds the system tree \(tree.tree) already")
            return r.facts
        }
        if r.facts["zstd"] == "none" { throw refuse("zstd is not installed (apt-get install zstd)") }
        // Room for the archive and the tree it unpacks to (about 4 times its size here).
        if let kb = Int(r.facts["free"] ?? ""), kb * 1024 < Int(tree.size) * 5 {
            throw refuse("\(kb >> 10) MiB free under \(Self.base); the system tree needs about \((Int(tree.size) * 5) >> 20) MiB")
        }
        let t0 = Date()
        let send = env.argv(host, afterKexec: false, command: KexecStart.asRoot + ["sh", "-c", Self.receiveScript, "sh", Self.base, tree.tree, tree.sha256])
        let sent = r.phase(.transfer, policy: policy, progress: progress) { r, _ in
            do {
                r.record(facts: try Command.run(send, timeout: max(600, timeout), inputFile: build + "/" + NetrootKind.systemName))
                return r.facts["tree"] == tree.sha256 ? .ok : .retry("the tree did not arrive whole", .transfer)
            } catch {
                return .retry("\(error)", .transfer)
            }
        }
        guard sent else { throw refuse(r.error ?? "the system tree could not be sent") }
        progress(String(format: "%@: store host, got the system tree %@ (%d MiB) in %.1f s", "\(host)", tree.tree, Int(tree.size >> 20),
                        Date().timeIntervalSince(t0)))
        return r.facts
    }

    /// The store host's address the nodes reach it at: one of its IPv4 addresses that no node has,
    /// in the subnet of a node's address; and the subnets of the nodes it serves.
    static func address(storeFacts: [String: String], nodes: [Deployment.Node]) -> (address: String, subnets: [String])? {
        let own = IPv4Net.addresses(ipJSON: storeFacts["addr"] ?? "")
        let theirs = nodes.flatMap { ($0.interfaces ?? []).flatMap(\.addresses) }.compactMap(IPv4Net.init(cidr:))
        let taken = Set(theirs.map(\.address))
        for a in own where !taken.contains(a.address) {
            let served = theirs.filter { $0.network == a.network && $0.prefix == a.prefix }
            if !served.isEmpty { return (IPv4Net.dotted(a.address), [a.cidrNetwork]) }
        }
        return nil
    }

    /// The same for machines known by their addresses alone (pxe: DHCP gives them, with a prefix
    /// nxc does not know): one of the store host's IPv4 addresses, not a machine's, whose subnet
    /// holds a machine's address; and that subnet.
    static func address(storeFacts: [String: String], nodeAddresses: [String]) -> (address: String, subnets: [String])? {
        let own = IPv4Net.addresses(ipJSON: storeFacts["addr"] ?? "")
        let theirs = nodeAddresses.compactMap(IPv4Net.parse)
        for a in own where !theirs.contains(a.address) && theirs.contains(where: { $0 & a.mask == a.network }) {
            return (IPv4Net.dotted(a.address), [a.cidrNetwork])
        }
        return nil
    }

    /// Exports the tree to `subnets`; returns the URL the nodes mount.
    func export(env: TestbedSSH, address: String, subnets: [String], progress: @Sendable (String) -> Void) throws -> String {
        let argv = env.argv(host, afterKexec: false, command: KexecStart.asRoot + ["sh", "-c", Self.exportScript, "sh", Self.base, tree.tree, fsid] + subnets)
        do { _ = try Command.run(argv, timeout: 120) } catch {
            throw DeployError.failedOn("the store host", [("\(host)", "export of \(Self.base)/\(tree.tree) failed: \(error)")], unit: "host")
        }
        let url = "nfs://\(address)\(Self.base)/\(tree.tree)"
        progress("\(host): store host, exports the system tree read-only to \(subnets.joined(separator: ", ")): \(url)")
        return url
    }
}

/// Where a netroot build's nodes find the system: a host of the reservation that nxc gives it and
/// that exports it (`--store-host`), or a folder they mount by themselves (`--store-dir`).
enum NetrootStore: Sendable {
    case host(StoreHost)
    case folder(StoreFolder)

    var host: StoreHost? { if case .host(let h) = self { h } else { nil } }
}

extension KexecStart {
    /// The store of a netroot build (nfs-store), which --store-host or --store-dir names; nil for other builds.
    static func netrootStore(_ ctx: StartContext) throws -> NetrootStore? {
        let o = ctx.options
        switch (try StoreHost.description(build: ctx.buildDirectory), o.storeHost, o.storeDir) {
        case (_, _?, _?):
            throw DeployError.badOption("--store-dir", problem: "goes without --store-host: the nodes mount the system from one or the other")
        case (let tree?, let s?, nil):
            return .host(StoreHost(host: try HostList.parse(s, file: "--store-host")[0], tree: tree))
        case (let tree?, nil, let d?):
            return .folder(try StoreFolder.make(dir: d, url: o.storeURL, tree: tree))
        case (_?, nil, nil):
            throw DeployError.badOption("--store-host", problem: "\(ctx.flavour.name) serves the system over NFS: give the host of the "
                                        + "reservation that runs the NFS server (--store-host HOST), or a folder the nodes mount over NFS "
                                        + "themselves, such as one under a Grid'5000 home (--store-dir DIR)")
        case (nil, _?, _), (nil, _, _?):
            throw DeployError.badOption(o.storeHost != nil ? "--store-host" : "--store-dir",
                                        problem: "the \(ctx.flavour.name) build has no system tree to serve (nfs-store builds have one)")
        case (nil, nil, nil):
            return nil
        }
    }

    /// A store folder's `nxc.root=URL`, the image made there first; roles that keep state keep it
    /// in RAM (no server of nxc's keeps it), which is said.
    static func folderRoot(_ folder: StoreFolder, build: String, composition: Composition, roles: [String],
                           progress: @Sendable (String) -> Void) throws -> String {
        let blocked = folder.unreachable()
        if !blocked.isEmpty {
            progress("warning: \(blocked.joined(separator: ", ")): others may not pass; root on a node reads an NFS home as nobody "
                     + "(root_squash) and could not reach \(folder.imageName) (chmod o+x on each)")
        }
        _ = try folder.publish(build: build, progress: progress)
        progress("store folder: the nodes mount \(folder.url) (read-only) and the image in it; nxc runs no server")
        for role in Set(roles).sorted() {
            let paths = statePaths(composition, role: role)
            guard !paths.isEmpty else { continue }
            progress("warning: role \(role) keeps \(paths.joined(separator: ", ")) in RAM: with --store-dir no server keeps the nodes' "
                     + "state (--store-host does)")
        }
        return "nxc.root=" + folder.rootURL
    }

    /// The store's `nxc.root=URL` for the nodes' command lines, once the tree is exported to their
    /// subnet ("" without a store, and on a dry run, which only says where it would export), and
    /// the URL of the nodes' state folders when roles keep some (`state:`).
    static func storeRoot(_ netroot: NetrootStore?, facts: [String: String]?, runs: [TestbedRun], doc: Deployment, env: TestbedSSH,
                          build: String, composition: Composition, dryRun: Bool,
                          progress: @Sendable (String) -> Void) throws -> (root: String, state: String?) {
        if case .folder(let folder) = netroot {
            return (try folderRoot(folder, build: build, composition: composition, roles: runs.map(\.entry.role), progress: progress), nil)
        }
        guard let store = netroot?.host, let facts, runs.contains(where: { !$0.failed }) else { return ("", nil) }
        guard let (address, subnets) = StoreHost.address(storeFacts: facts, nodes: doc.order.compactMap { doc.nodes[$0] }) else {
            throw DeployError.failedOn("the store host", [("\(store.host)", "none of its IPv4 addresses is in the subnet of a node's address, "
                                                           + "and no node has it: the nodes could not reach it")], unit: "host")
        }
        if dryRun {
            progress("\(store.host): store host, would export the system tree to \(subnets.joined(separator: ", ")) at \(address)")
            return ("", nil)
        }
        let root = "nxc.root=" + (try store.export(env: env, address: address, subnets: subnets, progress: progress))
        let keeping = doc.order.filter { n in !(doc.nodes[n].map { statePaths(composition, role: $0.role) } ?? []).isEmpty }
        guard !keeping.isEmpty else { return (root, nil) }
        return (root, try store.exportState(env: env, composition: composition.name, nodes: keeping, address: address, subnets: subnets,
                                            progress: progress))
    }

    /// The `state:` folders of a role.
    static func statePaths(_ composition: Composition, role: String) -> [String] {
        composition.roles.first { $0.name == role }?.state.map(\.value) ?? []
    }
}

/// An IPv4 address with its prefix length.
struct IPv4Net: Equatable {
    var address: UInt32
    var prefix: Int

    init?(cidr: String) {
        let parts = cidr.split(separator: "/")
        guard parts.count == 2, let p = Int(parts[1]), (0...32).contains(p), let a = Self.parse(String(parts[0])) else { return nil }
        address = a
        prefix = p
    }

    var mask: UInt32 { prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix) }
    var network: UInt32 { address & mask }
    var cidrNetwork: String { "\(Self.dotted(network))/\(prefix)" }

    static func parse(_ s: String) -> UInt32? {
        let o = s.split(separator: ".", omittingEmptySubsequences: false)
        guard o.count == 4 else { return nil }
        var v: UInt32 = 0
        for x in o {
            guard let n = UInt32(x), n < 256, !x.isEmpty, x.count <= 3 else { return nil }
            v = v << 8 | n
        }
        return v
    }

    static func dotted(_ v: UInt32) -> String { [24, 16, 8, 0].map { String((v >> UInt32($0)) & 255) }.joined(separator: ".") }

    /// Global IPv4 addresses of `ip -j address` output.
    static func addresses(ipJSON: String) -> [IPv4Net] {
        guard let data = ipJSON.data(using: .utf8), let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
        return list.flatMap { l in
            (l["addr_info"] as? [[String: Any]] ?? []).compactMap { ai -> IPv4Net? in
                guard (ai["family"] as? String) == "inet", (ai["scope"] as? String) == "global",
                      let local = ai["local"] as? String, let len = ai["prefixlen"] as? Int else { return nil }
                return IPv4Net(cidr: "\(local)/\(len)")
            }
        }
    }
}
