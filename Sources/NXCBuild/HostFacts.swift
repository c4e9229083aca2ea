import Foundation
import NXCComposition

/// Facts about the machine running nxc that builds depend on.
public enum HostFacts {
    /// The Debian mirror the host's apt uses: the first `deb` source of deb.debian.org-like archives,
    /// from /etc/apt/sources.list(.d) (one-line `.list` and deb822 `.sources` files), that passes the
    /// rule every mirror passes (`DebianSource.validateMirror`). Falls back to deb.debian.org.
    public static func aptMirror(root: String = "") -> String {
        let fm = FileManager.default
        var files = ["\(root)/etc/apt/sources.list"]
        if let names = try? fm.contentsOfDirectory(atPath: "\(root)/etc/apt/sources.list.d") {
            files += names.sorted().filter { $0.hasSuffix(".list") || $0.hasSuffix(".sources") }
                .map { "\(root)/etc/apt/sources.list.d/\($0)" }
        }
        for f in files {
            guard let text = try? BoundedRead.text(path: f, limit: 1 << 20, what: "an apt sources file") else { continue }
            for uri in sourceURIs(text, deb822: f.hasSuffix(".sources")) where !uri.contains("security") {
                guard uri.hasPrefix("http://") || uri.hasPrefix("https://") else { continue }
                do { try DebianSource.validateMirror(uri) } catch { continue }
                return uri
            }
        }
        return "http://deb.debian.org/debian"
    }

    /// The URIs of the `deb` entries of a sources file, in order.
    static func sourceURIs(_ text: String, deb822: Bool) -> [String] {
        var out: [String] = []
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = words.first else { continue }
            if deb822 {
                if first.lowercased() == "uris:" { out += words.dropFirst() }
                continue
            }
            guard first == "deb" else { continue }
            var rest = words.dropFirst()
            // Options: `[arch=amd64 signed-by=/k.gpg]`, possibly over several words.
            if rest.first?.hasPrefix("[") == true {
                while let w = rest.popFirst(), !w.hasSuffix("]") {}
            }
            if let uri = rest.first { out.append(uri) }
        }
        return out
    }

    public static var isRoot: Bool { geteuid() == 0 }
}

/// How mmdebstrap acts as root while it installs the image's packages.
public enum RootfsMode: String, Sendable, Equatable {
    /// nxc runs as root.
    case root
    /// A user namespace in which the user's subordinate IDs (/etc/subuid, /etc/subgid) are the image's
    /// users; needs newuidmap/newgidmap (package uidmap).
    case unshare
    /// fakechroot and fakeroot, where user namespaces are off; some package scripts fail under it.
    case fakechroot
}

/// A reason this machine or this user cannot build an image, with what to do about it.
public struct HostProblem: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "error: \(message)" }
}

/// What a build as a normal user depends on, gathered once (`HostFacts.gather`) so that the decision
/// (`HostFacts.rootfsMode(_:)`) is a pure function the tests give facts to.
public struct UnprivilegedFacts: Sendable {
    public var user: String
    /// Programs found on PATH: newuidmap, newgidmap, fakechroot, fakeroot, unshare.
    public var programs: Set<String>
    /// sysctl name → value, for the ones that turn unprivileged user namespaces off.
    public var sysctls: [String: String]
    /// What `unshare --user --map-root-user true` printed when it failed; nil when it worked or was not run.
    public var namespaceFailure: String?
    /// Contents of /etc/subuid and /etc/subgid; nil when unreadable.
    public var subuid: String?
    public var subgid: String?
    /// `NXC_ROOTFS_MODE`: the user's choice of mode, when set.
    public var requested: String?

    public init(user: String, programs: Set<String>, sysctls: [String: String] = [:], namespaceFailure: String? = nil,
                subuid: String?, subgid: String?, requested: String? = nil) {
        self.user = user
        self.programs = programs
        self.sysctls = sysctls
        self.namespaceFailure = namespaceFailure
        self.subuid = subuid
        self.subgid = subgid
        self.requested = requested
    }
}

extension HostFacts {
    /// Sysctls that turn unprivileged user namespaces off, the value that does, and how to turn them on.
    static let namespaceSwitches: [(name: String, off: String, on: String)] = [
        ("kernel.unprivileged_userns_clone", "0", "1"),
        ("user.max_user_namespaces", "0", "15000"),
        ("kernel.apparmor_restrict_unprivileged_userns", "1", "0"),
    ]

    /// The subordinate ID ranges mmdebstrap needs: every ID of a Debian system (up to nobody, 65534) maps.
    static let subordinateCount = 65536

    /// Reads what `rootfsMode` decides on. Takes milliseconds (the namespace probe is one short process),
    /// where a failing mmdebstrap took minutes and said less.
    public static func gather(root: String = "", environment: [String: String] = ProcessInfo.processInfo.environment) -> UnprivilegedFacts {
        let uid = geteuid()
        let user = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(uid)
        var programs = Set<String>()
        for p in ["newuidmap", "newgidmap", "fakechroot", "fakeroot", "unshare"] where Command.which(p, path: environment["PATH"]) != nil {
            programs.insert(p)
        }
        var sysctls: [String: String] = [:]
        for s in namespaceSwitches {
            let file = root + "/proc/sys/" + s.name.replacingOccurrences(of: ".", with: "/")
            if let v = try? String(contentsOfFile: file, encoding: .utf8) { sysctls[s.name] = v.trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        var failure: String?
        if uid != 0, programs.contains("unshare") {
            // Also catches what no sysctl tells: seccomp filters of a container, a missing kernel option.
            do {
                try Command.run(["unshare", "--user", "--map-root-user", "true"], environment: environment, timeout: 10)
            } catch let e as CommandError {
                failure = e.timedOut ? "unshare did not finish in 10 s" : e.output.trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                failure = "\(error)"
            }
        }
        return UnprivilegedFacts(user: user, programs: programs, sysctls: sysctls, namespaceFailure: failure,
                                 subuid: try? String(contentsOfFile: root + "/etc/subuid", encoding: .utf8),
                                 subgid: try? String(contentsOfFile: root + "/etc/subgid", encoding: .utf8),
                                 requested: environment["NXC_ROOTFS_MODE"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The first range of `user` in a subuid/subgid file, as mmdebstrap reads it (by name, first line wins).
    static func subordinateRange(user: String, in text: String) -> (start: Int, count: Int)? {
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count == 3, f[0] == user else { continue }
            guard let start = Int(f[1].trimmingCharacters(in: .whitespaces)),
                  let count = Int(f[2].trimmingCharacters(in: .whitespaces)) else { return nil }
            return (start, count)
        }
        return nil
    }

    /// Why mmdebstrap's unshare mode cannot work for this user, or nil when it can.
    static func unshareProblem(_ f: UnprivilegedFacts) -> String? {
        for s in namespaceSwitches where f.sysctls[s.name] == s.off {
            let apparmor = s.name.contains("apparmor") ? " (or give mmdebstrap an AppArmor profile that allows user namespaces)" : ""
            return "user namespaces are turned off for normal users on this machine (\(s.name) = \(s.off)), so mmdebstrap "
                + "cannot build the image in unshare mode. Root can turn them on: sysctl -w \(s.name)=\(s.on)\(apparmor), "
                + "and keep it in /etc/sysctl.d/"
        }
        if let why = f.namespaceFailure {
            return "this user cannot create a user namespace (unshare --user: \(why.isEmpty ? "failed" : why)), so mmdebstrap "
                + "cannot build the image in unshare mode. Check the sysctls user.max_user_namespaces and "
                + "kernel.unprivileged_userns_clone, and the container or seccomp policy nxc runs under"
        }
        for tool in ["newuidmap", "newgidmap"] where !f.programs.contains(tool) {
            return "'\(tool)' is not installed, and mmdebstrap needs it to build as a normal user (unshare mode); "
                + "install it with: apt-get install uidmap"
        }
        for (file, text, flag) in [("/etc/subuid", f.subuid, "--add-subuids"), ("/etc/subgid", f.subgid, "--add-subgids")] {
            let fix = "Root can add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \(f.user) "
                + "(a range of \(subordinateCount) IDs no other user of \(file) has)"
            guard let text else {
                return "cannot read \(file); mmdebstrap maps the image's users to the subordinate IDs it gives \(f.user). \(fix)"
            }
            guard let range = subordinateRange(user: f.user, in: text) else {
                return "\(file) has no range of subordinate IDs for user '\(f.user)' (by name), which mmdebstrap's unshare mode "
                    + "maps the image's users to. \(fix)"
            }
            if range.count < subordinateCount {
                return "\(file) gives user '\(f.user)' \(range.count) subordinate IDs, mmdebstrap needs \(subordinateCount) "
                    + "(the image's users go up to nobody, 65534). Root can widen it: usermod \(flag) "
                    + "\(range.start)-\(range.start + subordinateCount - 1) \(f.user) (a range no other user of \(file) has)"
            }
        }
        return nil
    }

    /// How mmdebstrap runs here: as root when nxc is root; else unshare mode, or fakechroot mode where
    /// unshare mode cannot work and fakechroot and fakeroot are installed (or `NXC_ROOTFS_MODE` asks for
    /// one). Throws, naming the cause and the fix, when neither can work.
    public static func rootfsMode(_ f: UnprivilegedFacts, isRoot: Bool = HostFacts.isRoot) throws -> (mode: RootfsMode, note: String?) {
        if isRoot { return (.root, nil) }
        let fakechroot = f.programs.contains("fakechroot") && f.programs.contains("fakeroot")
        let missingFake = "install them with: apt-get install fakechroot fakeroot"
        switch f.requested {
        case nil:
            break
        case RootfsMode.unshare.rawValue?:
            if let why = unshareProblem(f) { throw HostProblem(why + " (NXC_ROOTFS_MODE=unshare asks for this mode)") }
            return (.unshare, nil)
        case RootfsMode.fakechroot.rawValue?:
            guard fakechroot else { throw HostProblem("NXC_ROOTFS_MODE=fakechroot needs fakechroot and fakeroot; " + missingFake) }
            return (.fakechroot, "fakechroot mode, as NXC_ROOTFS_MODE asks")
        case let other?:
            throw HostProblem("NXC_ROOTFS_MODE is '\(other)'; it may be 'unshare' or 'fakechroot' (or unset: unshare where it works)")
        }
        guard let why = unshareProblem(f) else { return (.unshare, nil) }
        if fakechroot {
            return (.fakechroot, "fakechroot mode, because unshare mode cannot work here: \(why)")
        }
        throw HostProblem(why + ".\nOther ways: build as root, or " + missingFake + " and nxc uses mmdebstrap's fakechroot "
                          + "mode (some package scripts fail under it).")
    }
}
