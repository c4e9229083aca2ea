import Foundation
import NXCDeployment
import NXCTestbed
import NXCFlavours
import NXCStore

/// nfs-store's initrd made for the hosts at hand: the build's `initrd` carries every NIC driver
/// of the flavour (a host nxc knows nothing of boots with it); once the check has said which
/// drivers the hosts' NICs use (`@nic`), a start sends the core, those drivers' segments and the
/// payload instead.
extension KexecStart {
    /// The bundle in `dir` (the build's kernel and kexec.sh, an initrd with only the NIC segments
    /// of `runs`' drivers) and those drivers; nil when the build has no NIC segments, or a host
    /// that passed the check uses none of them (it gets every one).
    static func narrowedBundle(build: String, runs: [TestbedRun], into dir: String) throws -> (folder: String, drivers: [String])? {
        let fm = FileManager.default
        let base = build + "/" + NetrootKind.baseInitrd, payload = build + "/" + payloadFile
        guard fm.fileExists(atPath: base), fm.fileExists(atPath: payload) else { return nil }
        let hosts = runs.filter { !$0.failed && $0.state != "up" }
        guard !hosts.isEmpty else { return nil }
        var drivers = Set<String>()
        for r in hosts {
            let own = (r.facts["nic"] ?? "").split(separator: " ").map { $0.replacingOccurrences(of: "-", with: "_") }
                .filter { $0 != NetrootKind.allNICs && fm.fileExists(atPath: build + "/" + NetrootKind.nicFile($0)) }
            guard !own.isEmpty else { return nil }
            drivers.formUnion(own)
        }
        let list = drivers.sorted()
        guard let baseSize = (try fm.attributesOfItem(atPath: base)[.size] as? Int),
              let payloadSize = (try fm.attributesOfItem(atPath: payload)[.size] as? Int), baseSize > payloadSize else { return nil }
        try? fm.removeItem(atPath: dir)
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // initrd.base is the core then the payload: the core is its first bytes.
        guard let whole = fm.contents(atPath: base) else { throw DeployError.file("read", path: base, reason: "unreadable") }
        var initrd = whole.prefix(baseSize - payloadSize)
        for d in list {
            guard let seg = fm.contents(atPath: build + "/" + NetrootKind.nicFile(d)) else {
                throw DeployError.file("read", path: build + "/" + NetrootKind.nicFile(d), reason: "unreadable")
            }
            initrd.append(seg)
        }
        initrd.append(whole.suffix(payloadSize))
        try writeAtomically(Data(initrd), to: dir + "/initrd")
        for f in ["kernel", "kexec.sh", payloadFile] {
            try fm.copyItem(atPath: build + "/" + f, toPath: dir + "/" + f)
        }
        return (dir, list)
    }

    /// Where the hosts may copy `bundle` from: --shared-dir, where it is placed; else its folder at
    /// its own path (a project in an NFS home), which hosts without it skip.
    static func sharedFolder(of bundle: Bundle, ctx: StartContext) throws -> String {
        guard let dir = ctx.options.sharedDir else { return URL(fileURLWithPath: bundle.build).standardizedFileURL.path }
        let placed = try SharedBundle.publish(build: bundle.build, files: bundleFiles, sha: bundle.sha, into: dir)
        ctx.progress("bundle: placed in \(placed) for the hosts to copy")
        return placed
    }

    /// The local bundle of the files in `folder`: their SHA-256 and sizes, the initrd's system segment.
    static func localBundle(folder: String, run: String) throws -> Bundle {
        var local: [String: String] = [:]
        var sizes: [String] = []
        for f in bundleFiles {
            local[f] = try sha256(file: folder + "/" + f)
            sizes.append(String((try FileManager.default.attributesOfItem(atPath: folder + "/" + f)[.size] as? Int) ?? 0))
        }
        var b = Bundle(build: folder, sha: local, sizes: sizes, archives: PushArchives(folder: run))
        b.prefix = try systemSegment(build: folder)
        return b
    }
}

/// A value set between parallel phases and read during them.
final class Current<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
