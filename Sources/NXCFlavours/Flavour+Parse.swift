import Foundation
import NXCComposition
import NXCNames
import Yams

extension Flavour {
    /// Reads and validates a flavour file: a regular file named `<name>.yaml` within `YAMLLimits.flavour`
    /// (the open does not block, so a FIFO put where a flavour file is expected cannot hang nxc).
    /// Every error names the file, line, column and key.
    public static func load(path: String) throws -> Flavour {
        let text: String
        do { text = try YAMLLimits.flavour.read(path: path) } catch let e as YAMLLimitError { throw FlavourError(e) }
        return try parse(text, file: path)
    }

    /// Parses flavour text; `file` is the path it came from, whose base name the `name:` must equal.
    public static func parse(_ text: String, file: String) throws -> Flavour {
        try FlavourParser(file: file).parse(text)
    }
}

/// Walks the YAML node tree of a flavour file, keeping positions, and builds a `Flavour`.
struct FlavourParser {
    let file: String

    static let keys = ["name", "description", "artefact", "start", "packages", "kernel_params", "modules",
                       "components", "firmware", "mask", "keep_kernel", "files", "links", "kadeploy", "memory",
                       "boot_timeout"]

    func loc(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func fail(_ node: Node?, _ key: String?, _ message: String) -> FlavourError {
        FlavourError(file: file, location: node.map(loc), key: key, message)
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s):
            let shown = "'\(FlavourRules.printable(s.string))'"
            return s.style == .plain ? shown : "the string \(shown)"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        @unknown default: return "a value"
        }
    }

    /// "; did you mean 'x'?" for a near word, else the whole list.
    static func nearest(_ word: String, _ known: [String]) -> String {
        let hint = Suggestion.hint(word, among: known)
        return hint.isEmpty ? "; expected one of: \(known.joined(separator: ", "))" : hint
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        return s.string.isEmpty || s.string == "~" || s.string == "null"
    }

    /// The file's base name without `.yaml`: what `name:` must say, so that `-f NAME` and the
    /// build folder agree with the file that was read.
    var expectedName: String? {
        let base = (file as NSString).lastPathComponent
        return base.hasSuffix(".yaml") ? String(base.dropLast(".yaml".count)) : nil
    }

    func mapping(_ node: Node, _ key: String, allowed: [String]) throws -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let m) = node else {
            throw fail(node, key.isEmpty ? nil : key, "expected a mapping, got \(describe(node))")
        }
        guard m.count <= FlavourRules.maxEntries else {
            throw fail(node, key.isEmpty ? nil : key, "more than \(FlavourRules.maxEntries) entries")
        }
        var seen: [String: Node] = [:]
        var out: [(String, Node, Node)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw fail(k, key.isEmpty ? nil : key, "keys must be plain words or paths") }
            let name = ks.string
            let path = key.isEmpty ? name : "\(key).\(name)"
            if !allowed.isEmpty && !allowed.contains(name) {
                throw fail(k, key.isEmpty ? FlavourRules.printable(name) : "\(key).\(FlavourRules.printable(name))",
                           "unknown key '\(FlavourRules.printable(name))'\(Self.nearest(name, allowed))")
            }
            if let first = seen[name] {
                throw fail(k, FlavourRules.printable(path), "duplicate key (first at line \(first.mark?.line ?? 0))")
            }
            seen[name] = k
            out.append((name, k, v))
        }
        return out
    }

    func string(_ node: Node, _ key: String) throws -> String {
        guard case .scalar(let s) = node else { throw fail(node, key, "expected a string, got \(describe(node))") }
        if isNull(node) { throw fail(node, key, "expected a string, got nothing") }
        return s.string
    }

    func stringList(_ node: Node, _ key: String) throws -> [(value: String, node: Node, key: String)] {
        if isNull(node) { return [] }
        guard case .sequence(let seq) = node else {
            throw fail(node, key, "expected a list of strings, got \(describe(node))")
        }
        guard seq.count <= FlavourRules.maxEntries else { throw fail(node, key, "more than \(FlavourRules.maxEntries) entries") }
        var out: [(String, Node, String)] = []
        for (i, item) in seq.enumerated() {
            let k = "\(key)[\(i)]"
            out.append((try string(item, k), item, k))
        }
        return out
    }

    /// A list whose every item passes `check`.
    func checkedList(_ node: Node, _ key: String, _ what: String, _ check: (String) -> String?) throws -> [String] {
        let list = try stringList(node, key)
        for item in list {
            if let why = check(item.value) {
                throw fail(item.node, item.key, "\(what) '\(FlavourRules.printable(item.value))' \(why)")
            }
        }
        return list.map(\.value)
    }

    func int(_ node: Node, _ key: String, in range: ClosedRange<Int>, unit: String) throws -> Int {
        guard case .scalar(let s) = node, s.style == .plain, let v = Int(s.string), range.contains(v) else {
            throw fail(node, key, "expected a whole number of \(unit) from \(range.lowerBound) to \(range.upperBound), got \(describe(node))")
        }
        return v
    }

    /// MiB, as a composition's `memory:`: `1024`, `512M`, `2G`.
    func memory(_ node: Node, _ key: String) throws -> Int {
        let r = FlavourRules.memory
        let why = "expected a size from \(r.lowerBound)M to \(r.upperBound / 1024)G such as 1024 (MiB), 512M or 2G, got \(describe(node))"
        guard case .scalar(let s) = node else { throw fail(node, key, why) }
        guard let m = parseMemorySize(s.string), r.contains(m) else { throw fail(node, key, why) }
        return m
    }

    func yamlError(_ e: YamlError) -> FlavourError {
        let (location, message) = describeYAMLError(e, file: file)
        return FlavourError(file: file, location: location, message)
    }

    func parse(_ text: String) throws -> Flavour {
        let root: Node
        do {
            // Size and nesting are refused from the text: Yams recurses, and a few thousand levels overflow the stack.
            guard let n = try YAMLLimits.flavour.compose(text, file: file) else {
                throw FlavourError(file: file, "the flavour file is empty; expected a mapping with name:, artefact: and start:")
            }
            root = n
        } catch let e as YamlError {
            throw yamlError(e)
        } catch let e as YAMLLimitError {
            throw FlavourError(e)
        }

        var name: (value: String, node: Node)?
        var description = ""
        var artefact: ArtefactKindName?
        var start: StartMethodName?
        var packages: [String] = []
        var kernelParams: [String] = []
        var modules: [String] = []
        var components: [String] = []
        var firmware: [String] = []
        var mask: [String] = []
        var keepKernel = false
        var files: [(path: String, node: Node, content: String)] = []
        var links: [(path: String, node: Node, target: String)] = []
        var kadeploy: Flavour.KadeploySettings?
        var memory = 1024
        var bootTimeout = 300

        for (k, keyNode, v) in try mapping(root, "", allowed: Self.keys) {
            // An optional key with no value keeps its default, as an absent one.
            if isNull(v), !["name", "artefact", "start"].contains(k) { continue }
            switch k {
            case "name":
                let n = try string(v, k)
                guard FlavourRules.isName(n) else {
                    throw fail(v, k, "'\(FlavourRules.printable(n))' is not a flavour name (\(FlavourRules.nameRule))")
                }
                name = (n, v)
            case "description":
                description = try string(v, k)
                if let why = FlavourRules.lineProblem(description, max: FlavourRules.maxDescriptionBytes) {
                    throw fail(v, k, why)
                }
            case "artefact":
                artefact = try choice(v, k, ArtefactKindName.self, "artefact kind")
            case "start":
                start = try choice(v, k, StartMethodName.self, "start method")
            case "packages":
                packages = try checkedList(v, k, "package") {
                    isPackageName($0) ? nil : "is not a Debian package name (lowercase letters, digits, '+', '-', '.'; at least 2 characters)"
                }
            case "kernel_params":
                kernelParams = try checkedList(v, k, "kernel parameter", FlavourRules.kernelParameterProblem)
                if let why = FlavourRules.kernelParametersProblem(kernelParams) { throw fail(v, k, "the parameters \(why)") }
            case "modules":
                modules = try checkedList(v, k, "module", FlavourRules.moduleProblem)
            case "components":
                components = try checkedList(v, k, "component", FlavourRules.componentProblem)
            case "firmware":
                firmware = try checkedList(v, k, "firmware path", FlavourRules.firmwareProblem)
            case "mask":
                var seen: [String: Int] = [:]
                for (i, item) in try stringList(v, k).enumerated() {
                    guard let unit = UnitName.normalize(item.value) else {
                        throw fail(item.node, item.key, "'\(FlavourRules.printable(item.value))' is not a systemd unit name")
                    }
                    if let first = seen[unit] { throw fail(item.node, item.key, "\(unit) is already masked by \(k)[\(first)]") }
                    seen[unit] = i
                    mask.append(unit)
                }
            case "keep_kernel":
                guard case .scalar(let s) = v, s.style == .plain, let b = Bool.construct(from: s) else {
                    throw fail(v, k, "expected true or false, got \(describe(v))")
                }
                keepKernel = b
            case "files":
                var total = 0
                for (path, pathNode, fv) in try mapping(v, k, allowed: []) {
                    let fk = "\(k).\(FlavourRules.printable(path))"
                    if let why = FlavourRules.imagePathProblem(path) {
                        throw fail(pathNode, fk, "file path '\(FlavourRules.printable(path))' \(why)")
                    }
                    guard case .scalar(let s) = fv else { throw fail(fv, fk, "expected the file's content as a string, got \(describe(fv))") }
                    total += s.string.utf8.count
                    guard total <= FlavourRules.maxContentBytes else {
                        throw fail(fv, fk, "the files' contents add up to more than \(FlavourRules.maxContentBytes) bytes")
                    }
                    files.append((path, pathNode, s.string))
                }
            case "links":
                for (path, pathNode, lv) in try mapping(v, k, allowed: []) {
                    let lk = "\(k).\(FlavourRules.printable(path))"
                    if let why = FlavourRules.imagePathProblem(path) {
                        throw fail(pathNode, lk, "link path '\(FlavourRules.printable(path))' \(why)")
                    }
                    let target = try string(lv, lk)
                    if let why = FlavourRules.linkTargetProblem(target) {
                        throw fail(lv, lk, "link target '\(FlavourRules.printable(target))' \(why)")
                    }
                    links.append((path, pathNode, target))
                }
            case "kadeploy":
                kadeploy = try parseKadeploy(v, k)
            case "memory":
                memory = try self.memory(v, k)
            case "boot_timeout":
                bootTimeout = try int(v, k, in: FlavourRules.bootTimeout, unit: "seconds")
            default:
                throw fail(keyNode, k, "unknown key")
            }
        }
        guard let name else { throw fail(root, "name", "missing key 'name': the flavour's name, equal to the file's base name") }
        guard let artefact else {
            throw fail(root, "artefact", "missing key 'artefact': one of \(ArtefactKindName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let start else {
            throw fail(root, "start", "missing key 'start': one of \(StartMethodName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let expected = expectedName, expected == name.value else {
            let base = (file as NSString).lastPathComponent
            throw fail(name.node, "name", "'\(name.value)' must be the file's base name: the file must be called \(name.value).yaml, not \(FlavourRules.printable(base))")
        }
        try checkImageEntries(files: files.map { ($0.path, $0.node) }, links: links.map { ($0.path, $0.node) }, mask: mask)

        var f = Flavour(name: name.value, description: description, artefact: artefact, start: start, packages: packages,
                        kernelParams: kernelParams, modules: modules, components: components, firmware: firmware,
                        mask: mask, keepKernel: keepKernel,
                        files: Dictionary(files.map { ($0.path, $0.content) }, uniquingKeysWith: { a, _ in a }),
                        links: Dictionary(links.map { ($0.path, $0.target) }, uniquingKeysWith: { a, _ in a }),
                        kadeploy: kadeploy, memory: memory, bootTimeout: bootTimeout)
        f.file = file
        return f
    }

    /// One of an enumeration's names; a typo gets the nearest.
    func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ key: String, _: T.Type, _ what: String) throws -> T where T.RawValue == String {
        let s = try string(node, key)
        if let v = T(rawValue: s) { return v }
        let known = T.allCases.map(\.rawValue)
        throw fail(node, key, "unknown \(what) '\(FlavourRules.printable(s))'\(Self.nearest(s, known))")
    }

    /// Files, links and masks become entries of one archive layer: no path twice, none inside another's
    /// path (a file where a folder must be).
    func checkImageEntries(files: [(String, Node)], links: [(String, Node)], mask: [String]) throws {
        var owner: [String: String] = [:]
        for u in mask { owner["/etc/systemd/system/\(u)"] = "mask" }
        let entries = files.map { ($0.0, $0.1, "files") } + links.map { ($0.0, $0.1, "links") }
        for (path, node, kind) in entries {
            let key = "\(kind).\(FlavourRules.printable(path))"
            if let other = owner[path] { throw fail(node, key, "'\(FlavourRules.printable(path))' is also given by \(other)") }
            owner[path] = kind
        }
        for (path, node, kind) in entries {
            var parent = ""
            for comp in path.split(separator: "/").dropLast() {
                parent += "/" + comp
                if let other = owner[parent] {
                    throw fail(node, "\(kind).\(FlavourRules.printable(path))",
                               "'\(FlavourRules.printable(path))' is inside '\(FlavourRules.printable(parent))', which \(other) makes a file or link")
                }
            }
        }
    }

    func parseKadeploy(_ node: Node, _ key: String) throws -> Flavour.KadeploySettings {
        var settings = Flavour.KadeploySettings()
        for (k, _, v) in try mapping(node, key, allowed: ["visibility", "postinstall"]) {
            let kk = "\(key).\(k)"
            switch k {
            case "visibility":
                let s = try string(v, kk)
                guard FlavourRules.visibilities.contains(s) else {
                    throw fail(v, kk, "unknown visibility '\(FlavourRules.printable(s))'\(Self.nearest(s, FlavourRules.visibilities))")
                }
                settings.visibility = s
            case "postinstall":
                var values: [String: String] = [:]
                let fields = ["archive", "compression", "script"]
                for (pk, _, pv) in try mapping(v, kk, allowed: fields) {
                    let pkk = "\(kk).\(pk)"
                    let s = try string(pv, pkk)
                    if let why = FlavourRules.lineProblem(s, max: FlavourRules.maxKadeployStringBytes) { throw fail(pv, pkk, why) }
                    values[pk] = s
                }
                guard let archive = values["archive"], let compression = values["compression"], let script = values["script"] else {
                    let missing = fields.filter { values[$0] == nil }
                    throw fail(v, kk, "missing \(missing.map { "'\($0)'" }.joined(separator: ", ")): a postinstall needs archive, compression and script")
                }
                settings.postinstall = .init(archive: archive, compression: compression, script: script)
            default:
                break
            }
        }
        return settings
    }
}
