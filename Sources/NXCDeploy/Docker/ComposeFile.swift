import Foundation
import NXCComposition

/// The docker-compose file of a deployment: one service per node (distinct host names, which
/// replicas cannot give), systemd as PID 1, the node's name in the environment and the deployment
/// document mounted read-only. Written with keys that docker-compose v1 (file format 2.4, the one
/// Debian ships) and compose v2 both accept.
enum ComposeFile {
    /// Where the deployment document appears inside each container.
    static let deploymentPath = "/etc/nxc/deployment.given.json"

    /// What systemd needs from the engine, and nothing more (see docs/docker.md):
    /// tmpfs on /run and /run/lock (systemd mounts nothing there itself in a container), the cgroup
    /// tree writable in the container's own cgroup namespace, and the stop signal systemd obeys.
    static let systemdNeeds: [String] = [
        "    tmpfs:",
        "      - /run",
        "      - /run/lock",
        "      - /tmp",
        "    stop_signal: SIGRTMIN+3",
        "    stop_grace_period: 20s",
    ]

    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// - `deployment`: the document's path on this machine, relative to the compose file's folder or absolute.
    /// - `containerPrefix`: container names are PREFIX-NODE.
    static func text(composition: Composition, nodes: [(node: String, role: String)], image: String,
                     deployment: String, containerPrefix: String, header: String) -> String {
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
            l += systemdNeeds
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
