import Foundation
import NXCComposition

/// The docker-compose file of a deployment: one service per node (distinct host names, which
/// replicas cannot give), systemd as PID 1, the node's name in the environment and the deployment
/// document mounted read-only. Written with keys that docker-compose v1 (file format 2.4, the one
/// Debian ships) and compose v2 both accept.
enum ComposeFile {
    /// Where the deployment document appears inside each container.
    static let deploymentPath = "/etc/nxc/deployment.given.json"

    /// How the engine's host lays out cgroups, which decides what systemd needs to see of them.
    enum CgroupLayout: String, Sendable {
        /// cgroup v1 or hybrid (v1 controllers, a named `systemd` hierarchy): bind that one hierarchy.
        case v1
        /// unified cgroup v2 only: bind the tree.
        case v2

        /// This machine's layout (the engine runs here).
        static func detect() -> CgroupLayout {
            FileManager.default.fileExists(atPath: "/sys/fs/cgroup/systemd") ? .v1 : .v2
        }

        var volume: String {
            switch self {
            case .v1: return "/sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd:rw"
            case .v2: return "/sys/fs/cgroup:/sys/fs/cgroup:rw"
            }
        }
    }

    /// What systemd needs from the engine, and nothing more (docs/docker.md): no privileges, no
    /// added capabilities; tmpfs on /run, /run/lock and /tmp; its cgroup hierarchy writable (on a
    /// v1/hybrid host the `name=systemd` one only, measured: without it systemd exits at once with
    /// "Failed to create /docker/ID/init.scope control group"); the stop signal systemd obeys.
    static func systemdNeeds(_ cgroup: CgroupLayout) -> [String] {
        ["      - \(quote(cgroup.volume))",
         "    tmpfs:",
         "      - /run",
         "      - /run/lock",
         "      - /tmp",
         "    stop_signal: SIGRTMIN+3",
         "    stop_grace_period: 20s"]
    }

    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// - `deployment`: the document's path on this machine, relative to the compose file's folder or absolute.
    /// - `containerPrefix`: container names are PREFIX-NODE.
    static func text(composition: Composition, nodes: [(node: String, role: String)], image: String,
                     deployment: String, containerPrefix: String, header: String, cgroup: CgroupLayout) -> String {
        var l: [String] = header.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "#" : "# " + $0 }
        l += ["version: \"2.4\"", "services:"]
        for n in nodes {
            l += ["  \(n.node):",
                  "    image: \(quote(image))",
                  "    container_name: \(quote(containerPrefix + "-" + n.node))",
                  "    hostname: \(quote(n.node))",
                  "    environment:",
                  "      NXC_HOST: \(quote(n.node))",
                  "      NXC_DEPLOYMENT_FILE: \(quote(deploymentPath))",
                  "      container: docker",
                  "    volumes:",
                  "      - \(quote(deployment + ":" + deploymentPath + ":ro"))"]
            l += systemdNeeds(cgroup)
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
