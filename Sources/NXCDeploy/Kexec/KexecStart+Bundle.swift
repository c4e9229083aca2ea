import Foundation
import NXCDeployment
import NXCTestbed
import NXCArchive
import NXCBuild
import NXCFlavours
import NXCStore

/// The bundle as a start sees it: its files' hashes and sizes, the initrd's system segment, the tar
/// streams pushed to hosts, and where each host's copy came from.
extension KexecStart {
    /// The local bundle: SHA-256 and size of each file, and the tar streams pushed to hosts.
    struct Bundle: Sendable {
        var build: String
        var sha: [String: String]
        /// Sizes in `bundleFiles` order, as the check script takes them.
        var sizes: [String]
        var archives: PushArchives
        /// Where a host may find the bundle on a filesystem it shares with this machine ("": nowhere).
        var shared = ""
        /// The RAM a host needs for the system (nil: unknown, not checked).
        var memory: (bytes: Int, why: String)?
        /// The initrd's system segment (its first `size` bytes, before initrd.payload), when the
        /// build has the payload apart: a host that holds it is sent the payload alone.
        var prefix: (size: Int, sha: String)?
        /// The size of every file that may be sent: the bundle's and the initrd's payload segment.
        var fileSizes: [String: Int] {
            var d = Dictionary(uniqueKeysWithValues: zip(bundleFiles, sizes.map { Int($0) ?? 0 }))
            if let p = prefix, let whole = d["initrd"] { d[payloadFile] = whole - p.size }
            return d
        }
        /// What the check script takes after the two folders.
        var checkArguments: [String] { sizes + [String(prefix?.size ?? 0)] }
    }

    /// Where the hosts' bundles came from, and what this machine sent for them (its cost grows with
    /// the hosts that got it over SSH, not with those that copied it from the shared folder):
    /// each push, and each chain's stream (`relayFed`).
    static func distributionSummary(_ runs: [TestbedRun], bundle: Bundle, relayFed: Int) -> String {
        let size = bundle.fileSizes
        // Each host that answered the check, once: it got files over SSH, else through the relay
        // chain, else copied some from the shared folder, else had the bundle already.
        let checked = runs.filter { $0.facts["arch"] != nil }
        let pushed = checked.filter { !$0.pushed.isEmpty }
        let relayed = checked.filter { $0.pushed.isEmpty && !$0.relayed.isEmpty }
        let copied = checked.filter { $0.pushed.isEmpty && $0.relayed.isEmpty && !$0.fromShared.isEmpty }
        let bytes = pushed.reduce(0) { sum, r in sum + r.pushed.reduce(0) { $0 + (size[$1] ?? 0) } } + relayFed
        let sent = bytes >= 1 << 20 || bytes == 0 ? String(format: "%.1f MiB", Double(bytes) / 1_048_576)
            : String(format: "%.1f KiB", Double(bytes) / 1024)
        return String(format: "bundle: %d host(s) through the relay chain, %d copied it from the shared folder, %d got files over SSH, "
                      + "%d had it (%@ sent from here)", relayed.count, copied.count, pushed.count,
                      checked.count - pushed.count - relayed.count - copied.count, sent)
    }

    /// One tar per set of files some host lacks (usually all or none), made once and pushed to every
    /// such host in a single SSH session; removed when the pushes are done.
    final class PushArchives: @unchecked Sendable {
        let folder: String
        private let lock = NSLock()
        private var made: [String: String] = [:]
        init(folder: String) { self.folder = folder }

        func archive(of files: [String], from build: String) throws -> String {
            lock.lock()
            defer { lock.unlock() }
            let key = files.joined(separator: "+")
            if let p = made[key] { return p }
            let path = folder + "/push-" + key + ".tar"
            let tmp = path + ".part"
            let w = try ArchiveWriter(path: tmp, format: .pax, filter: .none)
            for f in files {
                try w.addFile(f, contentsOf: build + "/" + f, mode: f.hasSuffix(".sh") ? 0o755 : 0o644)
            }
            try w.finish()
            guard rename(tmp, path) == 0 else { throw DeployError.file("write", path: path, reason: String(cString: strerror(errno))) }
            made[key] = path
            return path
        }

        func removeAll() {
            lock.lock()
            defer { lock.unlock() }
            for p in made.values { unlink(p) }
            made = [:]
        }
    }

    /// The bundle files a checked host does not hold as this machine has them; a host that holds
    /// the initrd's system segment lacks only its payload (`initrd.payload`).
    static func missing(_ r: TestbedRun, bundle: Bundle) -> [String] {
        bundleFiles.filter { r.remoteSHA[$0] != bundle.sha[$0] }.map { f in
            f == "initrd" && bundle.prefix != nil && r.facts["prefix"] == bundle.prefix?.sha ? payloadFile : f
        }
    }
    static let payloadFile = RamdiskKind.payloadFile

    /// The size and SHA-256 of the initrd's first segment: the initrd less its payload, when the
    /// build folder has the payload apart (builds before it did not).
    static func systemSegment(build: String) throws -> (size: Int, sha: String)? {
        let fm = FileManager.default
        guard let payload = (try? fm.attributesOfItem(atPath: build + "/" + payloadFile)[.size]) as? Int,
              let whole = (try? fm.attributesOfItem(atPath: build + "/initrd")[.size]) as? Int, whole > payload else { return nil }
        let size = whole - payload
        return try sha256(file: build + "/initrd", firstBytes: size).map { (size, $0) }
    }
}
