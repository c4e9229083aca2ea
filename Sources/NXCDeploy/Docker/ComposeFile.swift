import Foundation
import NXCDeployment
import NXCBuild
import NXCComposition

/// The docker-compose file of a deployment: one service per node (distinct host names, which
/// replicas cannot give), systemd as PID 1, the node's name in the environment and the deployment
/// document mounted read-only. Written with keys that docker-compose v1 (file format 2.4, the one
/// Debian ships) and compose v2 both accept.
enum ComposeFile {
    /// Where the deployment document appears inside each container.
    static let deploymentPath = "/etc/nxc/deployment.given.json"

    /// How the engine places containers in cgroups, which decides what a node's systemd is given
    /// to write (docs/docker.md, "Privileges"): its own cgroup subtree, nothing else of the host's tree.
    struct Cgroups: Sendable, Equatable {
        /// cgroup v1 or hybrid (v1 controllers and a named `systemd` hierarchy), or unified v2 only.
        enum Version: String, Sendable { case v1, v2 }
        /// Who makes a container's cgroups: the engine itself, or the host's systemd (slices and scopes).
        enum Driver: String, Sendable { case cgroupfs, systemd }

        var version: Version
        var driver: Driver
        /// Whether the engine gives each container its own cgroup namespace by default (Docker's
        /// default on v2): the container then sees its cgroup as `/`, and the parent nxc binds for it
        /// is neither where systemd looks nor reachable (measured: the container cannot start).
        var privateNamespaces = false

        /// The engine's, as `docker info` reports them; without an engine, this machine's layout and
        /// the driver Docker defaults to on it (cgroupfs on v1, systemd on v2).
        static func detect() -> Cgroups {
            if Command.which("docker") != nil,
               let (st, out) = try? Command.status(["docker", "info", "--format", engineInfoFormat], timeout: 20),
               st == 0, let found = parse(engineInfo: out) {
                return found
            }
            let version: Version = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/systemd") ? .v1 : .v2
            return Cgroups(version: version, driver: version == .v1 ? .cgroupfs : .systemd)
        }

        /// `docker info --format` for `parse(engineInfo:)`: `1 cgroupfs name=seccomp,profile=default`.
        static let engineInfoFormat = "{{.CgroupVersion}} {{.CgroupDriver}}{{range .SecurityOptions}} {{.}}{{end}}"

        static func parse(engineInfo: String) -> Cgroups? {
            let f = engineInfo.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            guard f.count >= 2, let d = Driver(rawValue: f[1]) else { return nil }
            let options = f.dropFirst(2)
            guard options.allSatisfy({ $0.hasPrefix("name=") }) else { return nil }
            let v: Version
            switch f[0] {
            case "1": v = .v1
            case "2": v = .v2
            default: return nil
            }
            return Cgroups(version: v, driver: d, privateNamespaces: options.contains { $0 == "name=cgroupns" || $0.hasPrefix("name=cgroupns,") })
        }

        /// Why nxc cannot give a node its own cgroup subtree on this engine, and what to change; nil when it can.
        var problem: String? {
            guard privateNamespaces else { return nil }
            return "this Docker engine gives each container a private cgroup namespace (its default on a cgroup v2 host); "
                + "systemd in an unprivileged container then finds no cgroup it may write. Make the host's namespace the "
                + "default: \"default-cgroupns-mode\": \"host\" in /etc/docker/daemon.json (or dockerd --default-cgroupns-mode=host), "
                + "then restart the engine; each node still writes only its own cgroup subtree (docs/docker.md)"
        }

        /// The cgroup parent given to one container, which the engine creates for it alone: as
        /// compose's `cgroup_parent` names it, and as a path in each hierarchy. The container's own
        /// cgroup is PARENT/ID (cgroupfs) or PARENT/docker-ID.scope (systemd); its ID is not known
        /// before it exists, its parent is.
        func parent(container: String) -> (name: String, path: String) {
            switch driver {
            case .cgroupfs:
                return ("/nxc/" + container, "/nxc/" + container)
            case .systemd:
                // A '-' in a slice name means nesting (a-b.slice is inside a.slice): keep it to one level.
                let flat = String(container.map { $0.isLetter || $0.isNumber ? $0 : "_" })
                return ("nxc-\(flat).slice", "/nxc.slice/nxc-\(flat).slice")
            }
        }

        /// The one cgroup directory of the host that the container may write: its parent's, in the
        /// hierarchy systemd keeps its processes in.
        func writable(container: String) -> String {
            switch version {
            case .v1: return "/sys/fs/cgroup/systemd" + parent(container: container).path
            case .v2: return "/sys/fs/cgroup" + parent(container: container).path
            }
        }

        /// Empty directories the engine leaves behind after the container is removed (it removes the
        /// container's cgroup, never the parent it was given): the parent in each hierarchy. The
        /// systemd driver's slices go with their last scope.
        func leftovers(container: String, hierarchies: [String]) -> [String] {
            guard driver == .cgroupfs else { return [] }
            return hierarchies.map { $0 + parent(container: container).path }
        }

        /// This machine's mounted hierarchies: the unified root, or each v1 one (and `unified`).
        static func hierarchies(root: String = "/sys/fs/cgroup") -> [String] {
            let fm = FileManager.default
            if fm.fileExists(atPath: root + "/cgroup.controllers") { return [root] }
            // Aliases such as cpu -> cpu,cpuacct are symbolic links: each hierarchy once.
            return ((try? fm.contentsOfDirectory(atPath: root)) ?? []).sorted().map { root + "/" + $0 }.filter {
                (try? fm.attributesOfItem(atPath: $0)[.type] as? FileAttributeType) == .typeDirectory
            }
        }
    }

    /// What systemd needs from the engine, and nothing more (docs/docker.md, each measured): no
    /// privileges, no added capabilities, the engine's default seccomp profile; tmpfs on /run,
    /// /run/lock and /tmp; the stop signal it obeys; and of the host's cgroup tree, only the node's
    /// own subtree writable (the engine makes the container's cgroup inside the parent it is given,
    /// and systemd creates its own beside it, at the path /proc/1/cgroup names):
    /// - v1/hybrid: the `name=systemd` hierarchy read-only, as systemd-nspawn gives it, so that the
    ///   mount point exists and tools that look at its type (slurmd's cgroup autodetection) find a
    ///   cgroup file system; the node's parent read-write over it.
    /// - v2: the node's parent read-write over the engine's own read-only mount, where systemd finds
    ///   it when the engine runs containers in the host's cgroup namespace (docs/docker.md).
    static func systemdNeeds(_ cgroups: Cgroups, container: String) -> (volumes: [String], tmpfs: [String], rest: [String]) {
        let own = cgroups.writable(container: container)
        let hierarchy = cgroups.version == .v1 ? ["/sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd:ro"] : []
        return (volumes: hierarchy + [own + ":" + own + ":rw"],
                tmpfs: ["/run", "/run/lock", "/tmp"],
                rest: ["    cgroup_parent: \(quote(cgroups.parent(container: container).name))",
                       "    stop_signal: SIGRTMIN+3",
                       "    stop_grace_period: 20s"])
    }

    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// - `deployment`: the document's path on this machine, relative to the compose file's folder or absolute.
    /// - `containerPrefix`: container names are PREFIX-NODE.
    static func text(composition: Composition, nodes: [(node: String, role: String)], image: String,
                     deployment: String, containerPrefix: String, header: String, cgroups: Cgroups) -> String {
        var l: [String] = header.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "#" : "# " + $0 }
        l += ["version: \"2.4\"", "services:"]
        for n in nodes {
            let container = containerPrefix + "-" + n.node
            let needs = systemdNeeds(cgroups, container: container)
            l += ["  \(n.node):",
                  "    image: \(quote(image))",
                  "    container_name: \(quote(container))",
                  "    hostname: \(quote(n.node))",
                  "    environment:",
                  "      NXC_HOST: \(quote(n.node))",
                  "      NXC_DEPLOYMENT_FILE: \(quote(deploymentPath))",
                  "      container: docker",
                  "    volumes:",
                  "      - \(quote(deployment + ":" + deploymentPath + ":ro"))"]
            l += needs.volumes.map { "      - \(quote($0))" }
            l += ["    tmpfs:"] + needs.tmpfs.map { "      - \($0)" }
            l += needs.rest
            let ports = composition.role(named: n.role)?.ports ?? []
            if !ports.isEmpty {
                l.append("    ports:")
                for p in ports { l.append("      - \(quote(p.composeForm))") }
            }
            l += ["    networks:", "      nxc:", "        aliases:", "          - \(quote(n.node))"]
        }
        l += ["networks:", "  nxc: {}", ""]
        return l.joined(separator: "\n")
    }
}
