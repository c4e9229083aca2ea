import NXCComposition
import NXCNames

/// What each value of a flavour file may be. A flavour file can come from an archive given to
/// `nxc verify`, so every value is checked against what its consumer can take: names become paths,
/// kernel parameters go onto a command line and into scripts and a Kadeploy description, files and
/// links go into every image. Each check returns nil when the value is fine, else why it is not.
public enum FlavourRules {
    /// A flavour file is at most this big (the shipped ones are under 4 KiB), 64 levels deep.
    public static var maxFileBytes: Int { YAMLLimits.flavour.maxBytes }
    /// Entries of any one list or mapping.
    public static let maxEntries = 4096
    /// All `files:` contents together, counted as they go into the image (an alias counts each time).
    public static let maxContentBytes = 1 << 20
    /// All kernel parameters joined by spaces: x86 Linux keeps 2048 bytes of command line, and nxc adds
    /// `nxc.host=`, the deployment (inline or its URL) and the network of kexec'd hosts.
    public static let maxKernelParamsBytes = 1024
    /// One line of text (description), and each Kadeploy string.
    public static let maxDescriptionBytes = 512
    public static let maxKadeployStringBytes = 1024
    /// Paths in the image (and link targets), and one component of them (Linux's PATH_MAX and NAME_MAX).
    public static let maxPathBytes = 4096
    public static let maxComponentBytes = 255
    public static let memory = 128...65536
    public static let bootTimeout = 1...86400
    /// Kadeploy environment visibilities.
    public static let visibilities = ["private", "shared", "public"]
    /// The `nxc.*` kernel parameters a flavour may set; the others (`nxc.host`, `nxc.deployment`, …) are
    /// set by nxc for each node, and one from a flavour file would take the node over.
    public static let nxcKernelParameters: Set<String> = ["nxc.await"]

    public static let nameRule = "lowercase letters, digits and '-', 1 to 63 characters, not starting or ending with '-'"

    /// A flavour name: it becomes `build/<composition>/<name>`, `deploy/<composition>.<name>.json` and a
    /// docker image tag, so no '/', '.', upper case or anything a path or a tag would read differently.
    public static func isName(_ s: String) -> Bool { isHostname(s) }

    /// `s` with control characters shown as escapes, for an error message that must stay on one line.
    public static func printable(_ s: String, limit: Int = 80) -> String {
        var out = ""
        for u in s.unicodeScalars {
            if out.unicodeScalars.count >= limit { out += "…"; break }
            if u.properties.generalCategory == .control || isBidiControl(u) {
                out += u.escaped(asASCII: true)
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    static func isBidiControl(_ u: Unicode.Scalar) -> Bool {
        (0x202A...0x202E).contains(u.value) || (0x2066...0x2069).contains(u.value) || u.value == 0x200E || u.value == 0x200F
    }

    /// One line of text: no control characters (newline, tab, escape, NUL …) nor bidi overrides, that
    /// would let a value rewrite what a terminal or a generated file shows around it.
    public static func lineProblem(_ s: String, max: Int) -> String? {
        if s.utf8.count > max { return "is \(s.utf8.count) bytes long, more than \(max)" }
        if s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "must be one line without control characters (newline, tab, NUL …)"
        }
        if s.unicodeScalars.contains(where: isBidiControl) { return "must not contain Unicode direction overrides" }
        return nil
    }

    /// One kernel parameter, as Linux splits its command line: printable ASCII without spaces, except
    /// inside a double-quoted value (`dyndbg="file x +p"`), and no `--` (what follows goes to init).
    public static func kernelParameterProblem(_ p: String) -> String? {
        if p.isEmpty { return "is empty" }
        if p.utf8.count > maxKernelParamsBytes { return "is \(p.utf8.count) bytes long, more than \(maxKernelParamsBytes)" }
        guard p.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            return "must be printable ASCII (no newline, tab, NUL or other control character)"
        }
        let bytes = Array(p.utf8)
        let quotes = bytes.indices.filter { bytes[$0] == UInt8(ascii: "\"") }
        if !quotes.isEmpty {
            guard quotes.count == 2, let eq = bytes.firstIndex(of: UInt8(ascii: "=")), quotes[0] == eq + 1,
                  quotes[1] == bytes.count - 1 else {
                return "has quotes other than around a whole value (KEY=\"VALUE\")"
            }
            if bytes[..<quotes[0]].contains(UInt8(ascii: " ")) { return "must not contain spaces outside the quoted value" }
        } else if bytes.contains(UInt8(ascii: " ")) {
            return "must not contain spaces (one parameter per item; quote a value with spaces: KEY=\"A B\")"
        }
        if p.hasPrefix("-") { return "must not start with '-' ('--' passes the rest of the command line to init)" }
        let key = p.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
        if key.isEmpty { return "has no name before '='" }
        if key.hasPrefix("nxc."), !nxcKernelParameters.contains(String(key)) {
            return "sets \(key), which nxc sets for each node (a flavour may set only \(nxcKernelParameters.sorted().joined(separator: ", ")))"
        }
        return nil
    }

    /// The parameters together: what the kernel command line has room for beside nxc's own.
    public static func kernelParametersProblem(_ params: [String]) -> String? {
        let total = params.joined(separator: " ").utf8.count
        return total > maxKernelParamsBytes
            ? "take \(total) bytes on the kernel command line, more than \(maxKernelParamsBytes) (Linux keeps 2048 and nxc needs the rest)"
            : nil
    }

    /// A Debian archive component (`main`, `non-free-firmware`): it becomes a word of a sources line.
    public static func componentProblem(_ c: String) -> String? {
        guard (1...64).contains(c.utf8.count),
              c.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }) else {
            return "is not an archive component (lowercase letters, digits and '-', e.g. main or non-free-firmware)"
        }
        return nil
    }

    static func isPathCharacter(_ b: UInt8) -> Bool {
        (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57)
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "+")
            || b == UInt8(ascii: ",") || b == UInt8(ascii: "@")
    }

    /// A relative path whose components are all real names: no '.', '..' or empty component, a
    /// trailing '/' (a folder) allowed when `folder` is.
    static func relativePathProblem(_ p: String, under base: String, folderAllowed: Bool) -> String? {
        if p.utf8.count > maxPathBytes { return "is longer than \(maxPathBytes) bytes" }
        if p.hasPrefix("/") { return "must be relative to \(base) (no leading '/')" }
        var parts = p.split(separator: "/", omittingEmptySubsequences: false)
        if folderAllowed, parts.count > 1, parts.last == "" { parts.removeLast() }
        if parts.contains(where: { $0 == "." || $0 == ".." }) { return "must not contain '.' or '..' components" }
        if parts.contains("") { return "must not contain empty components ('//', or a trailing '/' where a file is meant)" }
        if parts.contains(where: { $0.utf8.count > maxComponentBytes }) { return "has a component longer than \(maxComponentBytes) bytes" }
        if !p.utf8.allSatisfy({ isPathCharacter($0) || $0 == UInt8(ascii: "/") }) {
            return "may contain only letters, digits, '/', '_', '-', '.', '+', ',' and '@'"
        }
        return nil
    }

    /// A kernel module: a name (`virtio_net`, `9pnet_virtio`) or a folder of the modules tree (`kernel/drivers/net/`).
    public static func moduleProblem(_ m: String) -> String? {
        if m.contains("/") {
            guard m.hasPrefix("kernel/"), m.hasSuffix("/") else {
                return "is neither a module name nor a folder of the modules tree (kernel/…/, ending in '/')"
            }
            return relativePathProblem(m, under: "the modules folder", folderAllowed: true)
        }
        guard (1...maxComponentBytes).contains(m.utf8.count), m.utf8.allSatisfy({
            ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 45
        }) else {
            return "is not a module name (letters, digits, '_' and '-') nor a folder kernel/…/"
        }
        return nil
    }

    /// A file or folder (trailing '/') under /usr/lib/firmware.
    public static func firmwareProblem(_ f: String) -> String? {
        if f.isEmpty { return "is empty" }
        return relativePathProblem(f, under: "/usr/lib/firmware", folderAllowed: true)
    }

    /// Paths nxc writes into every image itself; a flavour's file or link there (or above, where a
    /// folder must be) would replace the agent or its data.
    public static let reservedPaths = [
        "/etc/nxc", ImagePayload.rolesDir, "/usr/share/nxc", ImagePayload.agentPath,
        "/usr/lib/systemd/system/nxc-agent.service",
        "/etc/systemd/system/multi-user.target.wants/nxc-agent.service",
        "/usr/lib/systemd/system-generators/nxc-generator",
    ]

    /// A path in the image (a `files:` or `links:` key): absolute, real components only, as a
    /// composition's `files:`, and clear of what nxc writes itself.
    public static func imagePathProblem(_ p: String) -> String? {
        guard p.hasPrefix("/") else { return "must be absolute (start with '/')" }
        if let why = lineProblem(p, max: maxPathBytes) { return why }
        let parts = p.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if parts.contains(where: { $0 == "." || $0 == ".." }) { return "must not contain '.' or '..' components" }
        if p.hasSuffix("/") || parts.contains("") { return "must name a file (no empty components, no trailing '/')" }
        if parts.contains(where: { $0.utf8.count > maxComponentBytes }) { return "has a component longer than \(maxComponentBytes) bytes" }
        if let r = reservedPaths.first(where: { p == $0 || p.hasPrefix($0 + "/") || $0.hasPrefix(p + "/") }) {
            return "is where nxc puts its own files (\(r))"
        }
        return nil
    }

    /// A symbolic link's target: any path, absolute or relative, on one line.
    public static func linkTargetProblem(_ t: String) -> String? {
        if t.isEmpty { return "is empty" }
        return lineProblem(t, max: maxPathBytes)
    }
}
