import Foundation
import NXCDeployment
import NXCBuild
import NXCStore

/// The kexec bundle in a folder the hosts mount at the same path as this machine (the Grid'5000
/// homes over NFS). Each host copies it from there into its own bundle folder and nxc compares the
/// copy's SHA-256 with its own, so this machine sends nothing whatever the number of hosts; a host
/// that cannot read it, or reads other bytes, gets the files pushed over SSH as before.
enum SharedBundle {
    /// `--shared-dir DIR`: the bundle's files in `DIR/nxc-bundle-ID` (ID from their SHA-256),
    /// readable by all (root on a host usually reads an NFS home as nobody); made once through a
    /// temporary folder and a rename, and reused while its files have the bundle's sizes.
    static func publish(build: String, files: [String], sha: [String: String], into dir: String) throws -> String {
        let fm = FileManager.default
        let id = String(sha256(bytes: Array(files.map { "\($0) \(sha[$0] ?? "")\n" }.joined().utf8)).prefix(16))
        let target = dir + "/nxc-bundle-" + id
        let sizes = try files.map { try fm.attributesOfItem(atPath: build + "/" + $0)[.size] as? Int }
        func complete() -> Bool {
            zip(files, sizes).allSatisfy { f, size in (try? fm.attributesOfItem(atPath: target + "/" + f)[.size] as? Int) == size }
        }
        if complete() { return target }
        let tmp = "\(dir)/.nxc-bundle-\(id).tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        do {
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
            for f in files {
                try fm.copyItem(atPath: build + "/" + f, toPath: tmp + "/" + f)
                try fm.setAttributes([.posixPermissions: f.hasSuffix(".sh") ? 0o755 : 0o644], ofItemAtPath: tmp + "/" + f)
            }
            try? fm.removeItem(atPath: target)
            guard rename(tmp, target) == 0 else { throw DeployError.systemCall("rename", errno: errno, context: target) }
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw DeployError.file("place the bundle in", path: dir, reason: "\(error)")
        }
        return target
    }
}
