import Foundation
import NXCArchive
import NXCComposition
import NXCNames
import NXCStore

/// Making the layers: mmdebstrap for the base, apt in a chroot for the composition's packages.
extension RootfsBuilder {
    /// mmdebstrap, maintainer scripts, mkinitramfs and shadow honour SOURCE_DATE_EPOCH (the lock's),
    /// so builds of the same inputs at different times give the same files.
    static func mmdebstrap(_ req: RootfsRequest, packages: [String], into tmp: String, mode: RootfsMode,
                           lock: LockFile?, composition: Composition, progress: (String) -> Void = { _ in }) throws {
        let log = tmp + "/mmdebstrap.log"
        let root = tmp + "/root"
        // As a normal user, a tar: written inside mmdebstrap's namespace (or under fakeroot), it has the image's owners.
        let target = mode == .root ? root : tmp + "/root.tar"
        // The lock's versions, as apt preferences during the build.
        var prefs: String?
        if let lock { prefs = try preferencesFile(lock) }
        defer { if let prefs { try? FileManager.default.removeItem(atPath: prefs) } }
        let argv = mmdebstrapArguments(req, packages: packages, mode: mode, target: target, preferences: prefs)
        do {
            var env = ProcessInfo.processInfo.environment
            env["SOURCE_DATE_EPOCH"] = String(req.sourceDateEpoch)
            try Command.run(argv, environment: env, log: log, timeout: 1800)
        } catch let e as CommandError {
            if let missing = unknownPackage(in: e.output), let loc = composition.location(ofPackage: missing) {
                throw BuildError.unknownPackage(loc)
            }
            throw BuildError.stepFailed("mmdebstrap", log: log, tail: e.description)
        }
        let fm = FileManager.default
        var record: TreeOwnership?
        if mode != .root {
            let started = Date()
            do { try fm.createDirectory(atPath: root, withIntermediateDirectories: false) }
            catch { throw BuildFileError("creating the folder of the image", path: root, error: error) }
            record = try TreeOwnership.unpack(archive: target, into: root)
            do { try fm.removeItem(atPath: target) }
            catch { throw BuildFileError("removing mmdebstrap's tar once unpacked", path: target, error: error) }
            progress(String(format: "base system: unpacked in %.1f s (owners and modes of the image in %@)",
                            Date().timeIntervalSince(started), tmp + "/" + TreeOwnership.fileName))
        }
        try remove(preferencesInImage, in: root, ownership: &record, doing: "removing the lock's apt preferences from the image")
        try scrub(root, ownership: &record)
        if let record { try record.write(to: tmp + "/" + TreeOwnership.fileName) }
    }

    /// mmdebstrap's command line. No option turns signature checks off; the lock's preferences come
    /// in through mmdebstrap's own `upload` hook command (not a shell; the path has no spaces).
    static func mmdebstrapArguments(_ req: RootfsRequest, packages: [String], mode: RootfsMode, target: String,
                                    preferences: String?) -> [String] {
        // fakechroot mode runs mmdebstrap itself under fakechroot and fakeroot.
        var argv = mode == .fakechroot ? ["fakechroot", "fakeroot"] : []
        argv += ["mmdebstrap", "--mode=\(mode.rawValue)", "--variant=minbase",
                 "--architectures=\(req.distribution.architecture)",
                 "--components=\(req.distribution.components.joined(separator: ","))",
                 "--aptopt=Acquire::Retries \"3\"",
                 "--aptopt=APT::Install-Recommends \"false\"",
                 // dpkg need not sync each file it unpacks: the store syncs the whole entry once
                 // before the rename that makes it visible (Store.realise), so a crash still leaves
                 // no entry that a later build trusts (measured: vm-ramdisk's base 80 s instead of 91 s).
                 "--dpkgopt=force-unsafe-io",
                 // Lists stay so that the package layer can install without a new download of them.
                 "--skip=cleanup/apt/lists"]
        if mode != .root { argv.append("--format=tar") }
        if !packages.isEmpty { argv.append("--include=\(packages.joined(separator: ","))") }
        if let preferences { argv.append("--setup-hook=upload \(preferences) \(preferencesInImage)") }
        return argv + [req.distribution.suite, target, req.mirror]
    }

    static func installPackages(_ packages: [String], base: String, into tmp: String, lock: LockFile?, req: RootfsRequest,
                                composition: Composition) throws {
        let root = tmp + "/root"
        let log = tmp + "/apt.log"
        // Copy the base (reflinks where the filesystem has them), then apt inside a chroot.
        try Command.run(["cp", "-a", "--reflink=auto", base, root], timeout: 600)
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
                   "SOURCE_DATE_EPOCH": String(req.sourceDateEpoch)]
        let fm = FileManager.default
        // Name resolution for apt inside the chroot; removed afterwards.
        let resolv = root + "/etc/resolv.conf"
        let hadResolv = fm.fileExists(atPath: resolv)
        if !hadResolv, let host = fm.contents(atPath: "/etc/resolv.conf") { fm.createFile(atPath: resolv, contents: host) }
        // Keep package scripts from starting services in the chroot.
        let policy = root + "/usr/sbin/policy-rc.d"
        fm.createFile(atPath: policy, contents: Data("#!/bin/sh\nexit 101\n".utf8), attributes: [.posixPermissions: 0o755])
        let prefs = root + preferencesInImage
        if let lock { fm.createFile(atPath: prefs, contents: Data(lock.aptPreferences().utf8)) }
        defer {
            try? fm.removeItem(atPath: prefs)
            try? fm.removeItem(atPath: policy)
            if !hadResolv { try? fm.removeItem(atPath: resolv) }
        }
        do {
            try Command.run(["chroot", root, "apt-get", "update", "-q"], environment: env, log: log, timeout: 600)
            // --force-unsafe-io: the store syncs the layer once before its rename (see mmdebstrapArguments).
            try Command.run(["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends",
                             "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-unsafe-io",
                             "-o", "Acquire::Retries=3"] + packages,
                            environment: env, log: log + ".install", timeout: 1800)
            try Command.run(["chroot", root, "apt-get", "clean"], environment: env, timeout: 120)
        } catch let e as CommandError {
            if let missing = unknownPackage(in: e.output), let loc = composition.location(ofPackage: missing) {
                throw BuildError.unknownPackage(loc)
            }
            throw BuildError.stepFailed("apt-get install in the image", log: log, tail: e.description)
        }
        var noRecord: TreeOwnership?
        try scrub(root, ownership: &noRecord)
    }

    /// apt's and mmdebstrap's message for a name the mirror does not have.
    static func unknownPackage(in output: String) -> String? {
        for line in output.split(separator: "\n") {
            for marker in ["Unable to locate package ", "has no installation candidate"] {
                if let r = line.range(of: marker) {
                    if marker.hasPrefix("Unable") {
                        return String(line[r.upperBound...]).trimmingCharacters(in: .whitespaces)
                    }
                    // "E: Package 'foo' has no installation candidate"
                    let parts = line.split(separator: "'")
                    if parts.count >= 2 { return String(parts[1]) }
                }
            }
        }
        return nil
    }

}
