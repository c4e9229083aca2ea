import Foundation
import NXCBuild
import NXCStore
import NXCDeployment
import NXCFlavours

/// The results of runs (`nxc collect`'s `results/<run>/`) carried by an export, tied to the
/// artefacts they were made with: each run's manifest gives the SHA-256 of the build manifest of
/// its flavour, which must be the exported one; `nxc verify` checks every collected file against
/// the run's manifest and that tie again.
extension Export {
    /// A run's manifest, as far as export and verify read it.
    struct RunManifest {
        var composition: String
        var flavour: String
        var buildSHA256: String?
        /// path (relative to the run's folder) → SHA-256.
        var files: [String: String]

        init(json data: Data, origin: String) throws {
            guard let m = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let composition = m["composition"] as? String, let flavour = m["flavour"] as? String,
                  let files = m["files"] as? [[String: Any]] else {
                throw BuildError.badInput(origin, problem: "not the manifest of a results folder (nxc collect writes it)")
            }
            self.composition = composition
            self.flavour = flavour
            buildSHA256 = (m["build"] as? [String: Any])?["sha256"] as? String
            var map: [String: String] = [:]
            for f in files {
                guard let p = f["path"] as? String, let s = f["sha256"] as? String else {
                    throw BuildError.badInput(origin, problem: "a file entry without path or sha256")
                }
                map[p] = s
            }
            self.files = map
        }
    }

    /// The members `results/<run>/…` for each folder of `runs`, after checking that each was made
    /// with this composition and the artefacts being exported (`builds`: flavour → build folder).
    static func resultMembers(_ runs: [String], composition: String, builds: [String: String]) throws -> [(member: String, source: String, mode: UInt32)] {
        var out: [(String, String, UInt32)] = []
        var names = Set<String>()
        for dir in runs {
            let folder = URL(fileURLWithPath: dir).standardizedFileURL.path
            let name = (folder as NSString).lastPathComponent
            guard let data = FileManager.default.contents(atPath: folder + "/manifest.json") else {
                throw BuildError.badInput(folder, problem: "no manifest.json: not a folder `nxc collect` wrote")
            }
            let run = try RunManifest(json: data, origin: folder + "/manifest.json")
            guard run.composition == composition else {
                throw BuildError.badInput(folder, problem: "results of composition \(run.composition), not of \(composition)")
            }
            guard let build = builds[run.flavour] else {
                throw BuildError.badInput(folder, problem: "results of flavour \(run.flavour), which this export does not carry; add -f \(run.flavour)")
            }
            let exported = try sha256(file: build + "/manifest.json")
            guard run.buildSHA256 == exported else {
                throw BuildError.badInput(folder, problem: "made with other artefacts of \(run.flavour) than this export's (build manifest "
                                          + "\(run.buildSHA256?.prefix(16) ?? "unknown")…, exported \(exported.prefix(16))…); collect again after a start of this build")
            }
            guard names.insert(name).inserted else { throw BuildError.badInput(folder, problem: "a second results folder named \(name)") }
            let walker = FileManager.default.enumerator(atPath: folder)
            while let rel = walker?.nextObject() as? String {
                var st = stat()
                guard lstat(folder + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                out.append(("results/\(name)/\(rel)", folder + "/" + rel, 0o644))
            }
        }
        return out
    }

    /// verify: each exported run's files against its manifest, and its tie to the exported artefacts.
    static func verifyResults(root: String, sums: [(file: String, sha: String)], limits: Limits,
                              progress: @Sendable (String) -> Void) -> [Difference] {
        var differences: [Difference] = []
        let shas = Dictionary(sums.map { ($0.file, $0.sha) }, uniquingKeysWith: { a, _ in a })
        let runs = sums.map(\.file).filter { f in
            let p = f.split(separator: "/")
            return p.count == 3 && p[0] == "results" && p[2] == "manifest.json"
        }
        for m in runs.sorted() {
            let dir = String(m.dropLast("/manifest.json".count))
            let run: RunManifest
            do {
                run = try RunManifest(json: Data(try readText(root + "/" + m, limit: limits.textBytes).utf8), origin: m)
            } catch {
                differences.append(Difference(file: m, message: "\(error)"))
                continue
            }
            var bad = 0
            for (path, sha) in run.files.sorted(by: { $0.key < $1.key }) where shas[dir + "/" + path] != sha {
                bad += 1
                differences.append(Difference(file: dir + "/" + path, message: shas[dir + "/" + path] == nil
                                              ? "listed in the run's manifest but not in the export" : "differs from the run's manifest"))
            }
            let exported = shas["artefacts/\(run.flavour)/manifest.json"]
            if exported == nil || exported != run.buildSHA256 {
                differences.append(Difference(file: m, message: "made with other artefacts of \(run.flavour) than the exported ones"))
            } else if bad == 0 {
                progress("verify: \(dir): \(run.files.count) file(s) match the run's manifest, made with the exported \(run.flavour) artefacts")
            }
        }
        return differences
    }
}
