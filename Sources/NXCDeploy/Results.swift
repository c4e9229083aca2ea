import Foundation
import NXCDeployment
import NXCBuild
import NXCStore

/// Files to and from the nodes of a running deployment, whatever its flavour: `nxc cp` and
/// `nxc collect`. Everything goes as a tar stream through the start method's own channel to the
/// node (`remoteCommand`: SSH, `docker exec -i`, nsenter), one node after another in parallel;
/// a role as target means each of its nodes, and a folder per node on this side.
public enum Results {
    /// `nxc cp` with a node side: which nodes, and the path there.
    public struct Remote: Sendable, Equatable {
        public var target: String
        public var path: String
    }

    /// `TARGET:PATH` when TARGET is a node or a role of the deployment (anything else is a local path;
    /// `./a:b` names a local file with a colon).
    public static func remote(_ arg: String, in deployment: Deployment) -> Remote? {
        guard let colon = arg.firstIndex(of: ":") else { return nil }
        let target = String(arg[..<colon])
        guard deployment.nodes[target] != nil || deployment.nodes.values.contains(where: { $0.role == target }) else { return nil }
        return Remote(target: target, path: String(arg[arg.index(after: colon)...]))
    }

    /// The pipe of one copy: a fixed bash script (its arguments in argv, never in its text) with
    /// pipefail, so that either side's failure is the copy's.
    static let sendScript = #"set -o pipefail; dir=$1; base=$2; shift 2; tar -c -C "$dir" -- "$base" | "$@""#
    static let receiveScript = #"set -o pipefail; dest=$1; shift; "$@" | tar -x --no-same-owner --no-same-permissions -C "$dest""#
    /// On the node: what a copy to it unpacks into (made first), and what a copy from it packs.
    static let nodeReceive = ["sh", "-c", #"mkdir -p -- "$1" && exec tar -x -C "$1""#, "sh"]
    static let nodePack = ["sh", "-c", #"cd -- "$1" && exec tar -c -- "$2""#, "sh"]

    /// Copies the local `source` (a file or folder) into the folder `destination.path` of each node
    /// of `destination.target`, made if missing. Returns each node's error (empty: all done).
    public static func copyTo(_ active: ActiveDeployment, source: String, destination: Remote) async throws -> [String: String] {
        let state = try active.requireState()
        let nodes = try active.deployment.resolve(destination.target)
        let url = URL(fileURLWithPath: source).standardizedFileURL
        guard FileManager.default.fileExists(atPath: url.path) else { throw DeployError.badInput(source, problem: "no such file or folder") }
        guard destination.path.hasPrefix("/") else {
            throw DeployError.badInput("\(destination.target):\(destination.path)", problem: "give the folder on the node as an absolute path")
        }
        let (dir, base) = (url.deletingLastPathComponent().path, url.lastPathComponent)
        let method = active.method
        let deployment = active.deployment
        let results = await Parallel.map(nodes, limit: 32) { node -> (String, String?) in
            let remote = method.remoteCommand(node: node, deployment: deployment, state: state,
                                              command: nodeReceive + [destination.path], interactive: false)
            let (st, out) = (try? Command.status(["bash", "-c", sendScript, "bash", dir, base] + remote, timeout: 3600)) ?? (-1, "did not end within an hour")
            return (node, st == 0 ? nil : "exit \(st): \(failureReason(out))")
        }
        return Dictionary(uniqueKeysWithValues: results.compactMap { n, e in e.map { (n, $0) } })
    }

    /// Copies `source.path` (a file or folder) from each node of `source.target` into the local
    /// folder `destination`: into `destination/NODE/` when the target is a role, else straight in.
    public static func copyFrom(_ active: ActiveDeployment, source: Remote, destination: String) async throws -> [String: String] {
        let state = try active.requireState()
        let nodes = try active.deployment.resolve(source.target)
        let perNode = active.deployment.nodes[source.target] == nil
        guard source.path.hasPrefix("/"), source.path != "/" else {
            throw DeployError.badInput("\(source.target):\(source.path)", problem: "give the file or folder on the node as an absolute path, not /")
        }
        let trimmed = source.path.hasSuffix("/") ? String(source.path.dropLast()) : source.path
        let dir = (trimmed as NSString).deletingLastPathComponent
        let base = (trimmed as NSString).lastPathComponent
        let method = active.method
        let deployment = active.deployment
        let results = await Parallel.map(nodes, limit: 32) { node -> (String, String?) in
            let into = perNode ? destination + "/" + node : destination
            do { try FileManager.default.createDirectory(atPath: into, withIntermediateDirectories: true) } catch {
                return (node, "\(into): \(error.localizedDescription)")
            }
            let remote = method.remoteCommand(node: node, deployment: deployment, state: state,
                                              command: nodePack + [dir.isEmpty ? "/" : dir, base], interactive: false)
            let (st, out) = (try? Command.status(["bash", "-c", receiveScript, "bash", into] + remote, timeout: 3600)) ?? (-1, "did not end within an hour")
            return (node, st == 0 ? nil : "exit \(st): \(failureReason(out))")
        }
        return Dictionary(uniqueKeysWithValues: results.compactMap { n, e in e.map { (n, $0) } })
    }

    /// What a failed copy said: its first line that is not tar's closing summary.
    static func failureReason(_ s: String) -> String {
        let lines = s.split(whereSeparator: \.isNewline).map(String.init)
        return lines.first { !$0.contains("Exiting with failure status") } ?? lines.last ?? "no output"
    }
}
