import Foundation
import NXCDeployment
import NXCComposition
import NXCBuild
import NXCStore

/// `nxc collect`: the paths each role lists (`collect:`) and each node's journal, into
/// `results/<run>/<node>/`, with `manifest.json`: the SHA-256 and size of every file, what was
/// missing, the deployment document and the build's own manifest (the artefacts' hashes), so
/// that the results of a run can be told apart and checked later.
extension Results {
    /// On the node: a tar of those of its arguments (absolute paths) that exist, relative to /.
    static let nodeCollect = ["sh", "-c", #"for p; do if [ -e "$p" ] || [ -L "$p" ]; then printf '%s\0' "${p#/}"; fi; done | exec tar -c -C / --null -T -"#, "sh"]
    static let nodeJournal = ["journalctl", "-b", "--no-pager", "-o", "short-iso-precise"]
    static let toFileScript = #"set -o pipefail; out=$1; shift; "$@" > "$out""#

    public struct Collected: Sendable {
        public var folder: String
        public var files: Int
        public var bytes: Int
        /// Per node, what could not be gathered (a path it lacks, its journal).
        public var missing: [String: [String]]
    }

    public static func collect(_ active: ActiveDeployment, project: Project, name: String?,
                               progress: @escaping @Sendable (String) -> Void) async throws -> Collected {
        let state = try active.requireState()
        let doc = active.deployment
        let composition = state.compositionFile.flatMap { try? Composition.load(path: $0) }
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!,
                                                formatOptions: [.withYear, .withMonth, .withDay, .withTime, .withTimeZone])
        let run = name ?? "\(doc.composition)-\(stamp)"
        guard !run.isEmpty, !run.hasPrefix("."), run.utf8.count <= 200, !run.contains("/"), !run.contains(where: \.isNewline) else {
            throw DeployError.badOption("--name", problem: "'\(run)' is not a folder name (no '/', not starting with '.')")
        }
        let folder = project.directory + "/results/" + run
        guard !FileManager.default.fileExists(atPath: folder) else {
            throw DeployError.badInput(folder, problem: "exists already: results are never overwritten; give another --name")
        }
        // Gathered beside, renamed into place at the end: no half-written results folder.
        let work = folder + ".part-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: work) } }

        let method = active.method
        let nodes = doc.order
        progress("collecting from \(nodes.count) node(s) into \(folder)")
        let gathered = await Parallel.map(nodes, limit: 32) { node -> (String, [String], [String]) in
            let role = doc.nodes[node]?.role ?? ""
            let paths = composition?.role(named: role)?.collect.map(\.value) ?? []
            let into = work + "/" + node
            var missing: [String] = []
            try? FileManager.default.createDirectory(atPath: into, withIntermediateDirectories: true)
            if !paths.isEmpty {
                let remote = method.remoteCommand(node: node, deployment: doc, state: state, command: nodeCollect + paths, interactive: false)
                let (st, out) = (try? Command.status(["bash", "-c", receiveScript, "bash", into] + remote, timeout: 3600)) ?? (-1, "no end")
                if st != 0 { missing.append("collect: exit \(st): \(failureReason(out))") }
                var s = stat()
                missing += paths.filter { lstat(into + $0, &s) != 0 }
            }
            let journal = method.remoteCommand(node: node, deployment: doc, state: state, command: nodeJournal, interactive: false)
            let (st, out) = (try? Command.status(["bash", "-c", toFileScript, "bash", into + "/journal.txt"] + journal, timeout: 600)) ?? (-1, "no end")
            if st != 0 {
                unlink(into + "/journal.txt")
                missing.append("journal: exit \(st): \(failureReason(out))")
            }
            return (node, paths, missing)
        }
        // Every file gathered, with its SHA-256 and size.
        var files: [[String: Any]] = []
        var bytes = 0
        let enumerator = FileManager.default.enumerator(atPath: work)
        while let rel = enumerator?.nextObject() as? String {
            let path = work + "/" + rel
            var s = stat()
            guard lstat(path, &s) == 0, (s.st_mode & S_IFMT) == S_IFREG else { continue }
            files.append(["path": rel, "sha256": try sha256(file: path), "size": Int(s.st_size)])
            bytes += Int(s.st_size)
        }
        files.sort { ($0["path"] as? String ?? "") < ($1["path"] as? String ?? "") }
        var perNode: [String: Any] = [:]
        var missing: [String: [String]] = [:]
        for (node, paths, miss) in gathered {
            perNode[node] = ["role": doc.nodes[node]?.role ?? "", "collect": paths, "missing": miss]
            if !miss.isEmpty { missing[node] = miss }
        }
        var manifest: [String: Any] = [
            "composition": doc.composition, "flavour": doc.flavour, "run": run,
            "collected": ISO8601DateFormatter().string(from: Date()),
            "deployment": try JSONSerialization.jsonObject(with: try doc.encoded()),
            "nodes": perNode, "files": files,
        ]
        let build = project.buildDirectory(composition: doc.composition, flavour: doc.flavour) + "/manifest.json"
        if let data = FileManager.default.contents(atPath: build), let json = try? JSONSerialization.jsonObject(with: data) {
            manifest["build"] = ["manifest": json, "sha256": sha256(bytes: Array(data))]
        }
        let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(data, to: work + "/manifest.json")
        guard rename(work, folder) == 0 else {
            throw DeployError.file("rename into place", path: folder, reason: String(cString: strerror(errno)))
        }
        done = true
        return Collected(folder: folder, files: files.count, bytes: bytes, missing: missing)
    }
}
