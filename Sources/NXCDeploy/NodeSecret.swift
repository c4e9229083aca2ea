import Foundation
import NXCDeployment
import NXCBuild
import NXCFlavours

/// The deployment's secret, from which roles derive the keys they share (munge's key:
/// `nxc-agent secret derive munge`).
///
/// 32 bytes from the system's generator, drawn at each `nxc start` (so `--reuse` and
/// re-contextualisation change it), kept in the run folder as `secret` (0600 from creation) and sent
/// to each node once it answers, on the start method's own channel to it (`remoteCommand`: SSH with
/// nxc's key, or `docker exec -i`), on standard input: never in an argument, the deployment
/// document, a kernel command line, QEMU's argv, an artefact, or what the HTTP token protects.
public enum NodeSecret {
    public static let fileName = "secret"
    public static let length = 32
    /// The agent's command that keeps it on the node (/run/nxc/secret, root 0600).
    static let installCommand = [ImagePayload.agentPath, "secret", "install"]

    /// The secret already in `runDirectory`: a regular file of this user's, 0600, of the right length.
    static func kept(in runDirectory: String) -> String? {
        let path = runDirectory + "/" + fileName
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == geteuid(), st.st_mode & 0o077 == 0,
              st.st_size == length else { return nil }
        return path
    }

    /// Draws a new secret into `runDirectory/secret`; its path.
    static func create(in runDirectory: String) throws -> String {
        var g = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        for _ in 0..<(length / 8) { withUnsafeBytes(of: g.next() as UInt64) { bytes += $0 } }
        let path = runDirectory + "/" + fileName
        let tmp = path + ".tmp-\(getpid())"
        unlink(tmp)
        // 0600 at creation: there is no moment when another user could open it.
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DeployError.file("create", path: tmp, reason: String(cString: strerror(errno))) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == length, synced, rename(tmp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw DeployError.file("write", path: path, reason: why)
        }
        return path
    }

    /// Sends the secret in `file` to every node through `argv(node)` (the command that runs
    /// `installCommand` there), in parallel; the nodes that did not take it, with why.
    static func deliver(nodes: [String], file: String, parallel: Int = 32, timeout: Double = 60,
                        argv: @escaping @Sendable (String) -> [String]) async -> [(node: String, reason: String)] {
        let results: [(String, String)?] = await Parallel.map(nodes, limit: max(1, parallel)) { node in
            var last = ""
            // A node that has just answered may still drop one connection (sshd restarting).
            for attempt in 1...3 {
                if attempt > 1 { Thread.sleep(forTimeInterval: 2) }
                do {
                    let (status, out) = try Command.status(argv(node), timeout: timeout, inputFile: file)
                    if status == 0 { return nil }
                    last = out.split(separator: "\n").last.map(String.init) ?? "exit \(status)"
                } catch {
                    last = "\(error)"
                }
            }
            return (node, "the deployment's secret was not installed: \(last)")
        }
        return results.compactMap { $0.map { (node: $0.0, reason: $0.1) } }
    }

    /// A new secret for this start, sent to every node of `deployment` with the method's remote command.
    /// `nodes`: those to send it to (default: every node of the deployment).
    /// `keep` (--resume): the secret the nodes up already hold, when the run folder still has it.
    static func install(deployment: Deployment, state: RuntimeState, method: any StartMethod, runDirectory: String,
                        nodes only: [String]? = nil, keep: Bool = false, progress: @Sendable (String) -> Void) async throws {
        let file = try keep ? (kept(in: runDirectory) ?? create(in: runDirectory)) : create(in: runDirectory)
        let nodes = only ?? (deployment.order.isEmpty ? deployment.nodes.keys.sorted() : deployment.order)
        let started = Date()
        let failures = await deliver(nodes: nodes, file: file) { node in
            method.remoteCommand(node: node, deployment: deployment, state: state, command: installCommand, interactive: false)
        }
        guard failures.isEmpty else {
            throw DeployError.nodesDown(failures.map { ($0.node, $0.reason, nil) })
        }
        progress(String(format: "the deployment's secret: sent to %d node(s) in %.1f s (roles derive their keys from it)",
                        nodes.count, Date().timeIntervalSince(started)))
    }
}
