import Foundation
import NXCDeployment
import NXCBuild
import NXCStore

/// What one nspawn deployment sets up on this machine besides its containers, all named after its
/// run folder so that `stop` finds them again: a private network (a bridge in a network namespace
/// of its own, one namespace per node joined to it by a veth pair; no route out, and host firewall
/// rules such as Docker's FORWARD DROP never see the traffic) and one cgroup per node, so that two
/// nodes' units never share a cgroup. Everything here needs root.
struct NspawnHost: Sendable {
    /// Short tag of the run folder: namespaces, machine names and cgroups of this deployment.
    var tag: String

    init(runDirectory: String) {
        tag = String(sha256(bytes: Array(runDirectory.utf8)).prefix(8))
    }

    static let prefixLength = 24
    static let namespacePrefix = "nxc-"

    var switchNamespace: String { "\(Self.namespacePrefix)\(tag)-sw" }
    func namespace(node: String) -> String { "\(Self.namespacePrefix)\(tag)-\(node)" }
    func machine(node: String) -> String { "nxc-\(tag)-\(node)" }
    /// 10.99.0.1… on the private network (at most 250 nodes).
    static func address(index: Int) -> String { "10.99.0.\(index)" }
    /// A locally administered MAC, unique per deployment and node.
    func mac(index: Int) -> String {
        let t = Array(tag.utf8)
        return String(format: "02:6e:73:%02x:%02x:%02x", Int(t[0]) ^ Int(t[1]), index >> 8, index & 0xff)
    }

    /// Creates the switch and one namespace per node (`nodes` in order, addresses from 1), each
    /// with its address already on: the node's /sys/class/net shows the host's interfaces (nspawn
    /// mounts sysfs before it joins the namespace), so the agent could not find its NIC by MAC.
    func createNetwork(nodes: [String]) throws {
        try ip(["netns", "add", switchNamespace])
        try ip(["-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
        try ip(["-n", switchNamespace, "link", "set", "br0", "up"])
        for (i, node) in nodes.enumerated() {
            let ns = namespace(node: node)
            try ip(["netns", "add", ns])
            try ip(["-n", switchNamespace, "link", "add", "p\(i + 1)", "type", "veth", "peer", "name", "host0", "netns", ns])
            try ip(["-n", switchNamespace, "link", "set", "p\(i + 1)", "master", "br0", "up"])
            try ip(["-n", ns, "link", "set", "host0", "address", mac(index: i + 1)])
            try ip(["-n", ns, "address", "add", "\(Self.address(index: i + 1))/\(Self.prefixLength)", "dev", "host0"])
            try ip(["-n", ns, "link", "set", "host0", "up"])
            try ip(["-n", ns, "link", "set", "lo", "up"])
        }
    }

    private func ip(_ args: [String]) throws {
        do { try Command.run(["ip"] + args, timeout: 20) } catch {
            throw DeployError.commandFailed("setting up the private network: ip \(args.joined(separator: " "))", underlying: error)
        }
    }

    /// This deployment's namespaces that exist (under /run/netns).
    func namespaces() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        return names.filter { $0.hasPrefix("\(Self.namespacePrefix)\(tag)-") }.sorted()
    }

    /// Deletes the namespaces (their veths go with them); returns those that remain.
    func deleteNetwork() -> [String] {
        for ns in namespaces() { _ = try? Command.status(["ip", "netns", "delete", ns], timeout: 20) }
        return namespaces().map { "network namespace \($0)" }
    }

    /// The cgroup hierarchies a node's processes go in: the unified tree, or on a v1/hybrid host
    /// systemd's named hierarchy and the unified one beside it.
    static func hierarchies() -> [String] {
        let fm = FileManager.default
        if fm.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") { return ["/sys/fs/cgroup"] }
        return ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"].filter { fm.fileExists(atPath: $0 + "/cgroup.procs") }
    }

    /// `nxc-nspawn/TAG` in each hierarchy.
    func cgroupRoots() -> [String] { Self.hierarchies().map { $0 + "/nxc-nspawn/" + tag } }

    /// A node's cgroup in each hierarchy, created; its `cgroup.procs` files, where the launcher
    /// writes itself before it starts systemd-nspawn (which keeps its caller's cgroup: --keep-unit).
    func createCgroups(node: String) throws -> [String] {
        try cgroupRoots().map { root in
            let dir = root + "/" + node
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw DeployError.file("create", path: dir, reason: "node \(node)'s cgroup: \(error.localizedDescription)")
            }
            return dir + "/cgroup.procs"
        }
    }

    /// Removes the deployment's cgroups, deepest first (nspawn leaves its payload/ and supervisor/
    /// folders); returns those that remain (a process still in one).
    func deleteCgroups() -> [String] {
        var left: [String] = []
        for root in cgroupRoots() where FileManager.default.fileExists(atPath: root) {
            var dirs: [String] = []
            func walk(_ d: String) {
                dirs.append(d)
                for name in (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? [] {
                    var st = stat()
                    if lstat(d + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { walk(d + "/" + name) }
                }
            }
            walk(root)
            for d in dirs.sorted(by: { $0.count > $1.count }) { _ = rmdir(d) }
            if FileManager.default.fileExists(atPath: root) { left.append("cgroup \(root)") }
            _ = rmdir((root as NSString).deletingLastPathComponent)
        }
        return left
    }
}
