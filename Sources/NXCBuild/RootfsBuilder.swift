import Foundation
import NXCComposition
import NXCStore

/// What goes into a root filesystem.
public struct RootfsRequest: Sendable {
    public var distribution: Distribution
    public var mirror: String
    /// Packages of the flavour and the agent: the cached base layer.
    public var basePackages: [String]
    /// Packages of the composition: installed on top of the base.
    public var packages: [String]

    public init(distribution: Distribution, mirror: String, basePackages: [String], packages: [String]) {
        self.distribution = distribution
        self.mirror = mirror
        self.basePackages = basePackages.sorted()
        self.packages = packages.sorted()
    }
}

/// A root filesystem in the store.
public struct BuiltRootfs: Sendable {
    /// The directory holding the system tree.
    public var root: String
    public var hash: String
    public var ranMmdebstrap: Bool
    public var reused: Bool
}

/// Builds root filesystems in two cached layers: the base (mmdebstrap of the flavour's packages)
/// and the system (the composition's packages installed into a copy of the base with apt), so
/// adding a package does not rebuild the base. Without root, one mmdebstrap (unshare mode) makes both.
public struct RootfsBuilder: Sendable {
    public let store: Store
    public let progress: @Sendable (String) -> Void
    /// Bumped when the way layers are made changes, so old entries are not reused.
    static let recipeVersion = "4"

    public init(store: Store, progress: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.progress = progress
    }

    public func build(_ req: RootfsRequest, composition: Composition) async throws -> BuiltRootfs {
        guard Command.which("mmdebstrap") != nil else { throw BuildError.toolMissing("mmdebstrap", package: "mmdebstrap") }
        var h = InputHash("base")
        h.add("recipe", Self.recipeVersion)
        h.add("suite", req.distribution.suite)
        h.add("mirror", req.mirror)
        h.add("components", req.distribution.components)
        h.add("arch", req.distribution.architecture)
        h.add("packages", req.basePackages)
        let layered = HostFacts.isRoot
        if !layered { h.add("single-layer", req.packages) }
        let baseHash = h.finalize()
        var ran = false
        let base: (path: String, reused: Bool)
        if let p = store.lookup(name: "base", hash: baseHash) {
            base = (p, true)
            progress("base system: reused \(p)")
        } else {
            ran = true
            let all = layered ? req.basePackages : req.basePackages + req.packages
            progress("base system: running mmdebstrap (\(all.count) packages, \(req.distribution.suite), \(req.mirror))")
            let started = Date()
            base = try await store.realise(name: "base", hash: baseHash) { tmp in
                try Self.mmdebstrap(req, packages: all, into: tmp, rootMode: layered, composition: composition)
            }
            progress(String(format: "base system: built in %.1f s", Date().timeIntervalSince(started)))
        }
        guard layered, !req.packages.isEmpty else {
            return BuiltRootfs(root: base.path + "/root", hash: baseHash, ranMmdebstrap: ran, reused: base.reused)
        }
        var s = InputHash("system")
        s.add("base", baseHash)
        s.add("recipe", Self.recipeVersion)
        s.add("packages", req.packages)
        let sysHash = s.finalize()
        if let p = store.lookup(name: "system", hash: sysHash) {
            progress("packages: reused \(p)")
            return BuiltRootfs(root: p + "/root", hash: sysHash, ranMmdebstrap: ran, reused: true)
        }
        progress("packages: installing \(req.packages.joined(separator: " "))")
        let started = Date()
        let sys = try await store.realise(name: "system", hash: sysHash) { tmp in
            try Self.installPackages(req.packages, base: base.path + "/root", into: tmp, composition: composition)
        }
        progress(String(format: "packages: installed in %.1f s", Date().timeIntervalSince(started)))
        return BuiltRootfs(root: sys.path + "/root", hash: sysHash, ranMmdebstrap: ran, reused: false)
    }

    /// The time every build claims to happen at (mmdebstrap, maintainer scripts, mkinitramfs and
    /// shadow honour it), so that builds of the same inputs at different times give the same files.
    public static let sourceDateEpoch = "1700000000"

    static func mmdebstrap(_ req: RootfsRequest, packages: [String], into tmp: String, rootMode: Bool,
                           composition: Composition) throws {
        let log = tmp + "/mmdebstrap.log"
        var argv = ["mmdebstrap", "--mode=\(rootMode ? "root" : "unshare")", "--variant=minbase",
                    "--architectures=\(req.distribution.architecture)",
                    "--components=\(req.distribution.components.joined(separator: ","))",
                    "--aptopt=Acquire::Retries \"3\"",
                    "--aptopt=APT::Install-Recommends \"false\"",
                    // Lists stay so that the package layer can install without a new download of them.
                    "--skip=cleanup/apt/lists"]
        if !packages.isEmpty { argv.append("--include=\(packages.joined(separator: ","))") }
        argv += [req.distribution.suite, tmp + "/root", req.mirror]
        do {
            var env = ProcessInfo.processInfo.environment
            env["SOURCE_DATE_EPOCH"] = Self.sourceDateEpoch
            try Command.run(argv, environment: env, log: log, timeout: 1800)
        } catch let e as CommandError {
            if let missing = unknownPackage(in: e.output), let loc = composition.location(ofPackage: missing) {
                throw BuildError.unknownPackage(loc)
            }
            throw BuildError.stepFailed("mmdebstrap", log: log, tail: e.description)
        }
        try scrub(tmp + "/root")
    }

    static func installPackages(_ packages: [String], base: String, into tmp: String, composition: Composition) throws {
        let root = tmp + "/root"
        let log = tmp + "/apt.log"
        // Copy the base (reflinks where the filesystem has them), then apt inside a chroot.
        try Command.run(["cp", "-a", "--reflink=auto", base, root], timeout: 600)
        let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
                   "SOURCE_DATE_EPOCH": Self.sourceDateEpoch]
        let fm = FileManager.default
        // Name resolution for apt inside the chroot; removed afterwards.
        let resolv = root + "/etc/resolv.conf"
        let hadResolv = fm.fileExists(atPath: resolv)
        if !hadResolv, let host = fm.contents(atPath: "/etc/resolv.conf") { fm.createFile(atPath: resolv, contents: host) }
        // Keep package scripts from starting services in the chroot.
        let policy = root + "/usr/sbin/policy-rc.d"
        fm.createFile(atPath: policy, contents: Data("#!/bin/sh\nexit 101\n".utf8), attributes: [.posixPermissions: 0o755])
        defer {
            try? fm.removeItem(atPath: policy)
            if !hadResolv { try? fm.removeItem(atPath: resolv) }
        }
        do {
            try Command.run(["chroot", root, "apt-get", "update", "-q"], environment: env, log: log, timeout: 600)
            try Command.run(["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends",
                             "-o", "Dpkg::Options::=--force-confold", "-o", "Acquire::Retries=3"] + packages,
                            environment: env, log: log + ".install", timeout: 1800)
            try Command.run(["chroot", root, "apt-get", "clean"], environment: env, timeout: 120)
        } catch let e as CommandError {
            if let missing = unknownPackage(in: e.output), let loc = composition.location(ofPackage: missing) {
                throw BuildError.unknownPackage(loc)
            }
            throw BuildError.stepFailed("apt-get install in the image", log: log, tail: e.description)
        }
        try scrub(root)
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

    /// Removes what must never be in an artefact (private host keys) and what differs between builds.
    static func scrub(_ root: String) throws {
        let fm = FileManager.default
        if let names = try? fm.contentsOfDirectory(atPath: root + "/etc/ssh") {
            for n in names where n.hasPrefix("ssh_host_") { try fm.removeItem(atPath: root + "/etc/ssh/" + n) }
        }
        // Secrets packages generate at install time are not shipped (no secret in an artefact):
        // munge's key comes from the composition at run time (templates/slurm).
        try? fm.removeItem(atPath: root + "/etc/munge/munge.key")
        // systemd creates a fresh machine id on each node at boot.
        fm.createFile(atPath: root + "/etc/machine-id", contents: Data())
        try? fm.removeItem(atPath: root + "/var/lib/dbus/machine-id")
        for dir in ["/var/cache/apt/archives/partial", "/var/cache/apt"] {
            if let names = try? fm.contentsOfDirectory(atPath: root + dir) {
                for n in names where n.hasSuffix(".bin") || n.hasSuffix(".deb") { try? fm.removeItem(atPath: root + dir + "/" + n) }
            }
        }
    }

    /// Checks that every role's services exist as unit files in the image.
    public static func checkServices(of composition: Composition, root: String) throws {
        for role in composition.roles {
            for s in role.services {
                let unit = s.value.contains(".") ? s.value : s.value + ".service"
                let dirs = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]
                // A unit the role brings itself as one of its files counts too.
                var found = dirs.contains { d in FileManager.default.fileExists(atPath: root + d + "/" + unit)
                    || role.files.contains { $0.path == d + "/" + unit } }
                // Template instances (getty@tty1.service) come from their template unit.
                if !found, let at = unit.firstIndex(of: "@"), let dot = unit.lastIndex(of: ".") {
                    let template = String(unit[...at]) + String(unit[dot...])
                    found = dirs.contains { FileManager.default.fileExists(atPath: root + $0 + "/" + template) }
                }
                if !found { throw BuildError.missingService(s, role: role.name) }
            }
        }
    }
}
