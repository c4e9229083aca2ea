import Foundation
import NXCComposition
import NXCNames
import Yams

/// The flavour file's keys, one by one, checked against FlavourRules.
extension FlavourParser {
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
        var artefact: String?
        var start: String?
        var packages: [String] = []
        var kernelParams: [String] = []
        var components: [String] = []
        var mask: [String] = []
        // Keys of the artefact kinds and start methods, read once the file's kind and method are known.
        var ownEntries: [(key: String, keyNode: Node, value: Node)] = []
        var files: [(path: String, node: Node, content: String)] = []
        var links: [(path: String, node: Node, target: String)] = []
        var bootTimeout = 300
        var isDefault = false

        let ownKeys = Set((Array(names.kindSettings.values) + Array(names.methodSettings.values)).flatMap { $0.keys })
        for (k, keyNode, v) in try mapping(root, "", allowed: Self.keys + ownKeys.sorted()) {
            // An optional key with no value keeps its default, as an absent one.
            if isNull(v), !["name", "artefact", "start"].contains(k) { continue }
            if ownKeys.contains(k), !Self.keys.contains(k) {
                ownEntries.append((k, keyNode, v))
                continue
            }
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
                artefact = try choice(v, k, names.artefactKinds, "artefact kind")
            case "start":
                start = try choice(v, k, names.startMethods, "start method")
            case "packages":
                packages = try checkedList(v, k, "package") {
                    isPackageName($0) ? nil : "is not a Debian package name (lowercase letters, digits, '+', '-', '.'; at least 2 characters)"
                }
            case "kernel_params":
                kernelParams = try checkedList(v, k, "kernel parameter", FlavourRules.kernelParameterProblem)
                if let why = FlavourRules.kernelParametersProblem(kernelParams) { throw fail(v, k, "the parameters \(why)") }
            case "components":
                components = try checkedList(v, k, "component", FlavourRules.componentProblem)
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
            case "boot_timeout":
                bootTimeout = try int(v, k, in: FlavourRules.bootTimeout, unit: "seconds")
            case "default":
                isDefault = try bool(v, k)
            default:
                throw fail(keyNode, k, "unknown key")
            }
        }
        guard let name else { throw fail(root, "name", "missing key 'name': the flavour's name, equal to the file's base name") }
        guard let artefact else {
            throw fail(root, "artefact", "missing key 'artefact': one of \(names.artefactKinds.joined(separator: ", "))")
        }
        guard let start else {
            throw fail(root, "start", "missing key 'start': one of \(names.startMethods.joined(separator: ", "))")
        }
        guard let expected = expectedName, expected == name.value else {
            let base = (file as NSString).lastPathComponent
            throw fail(name.node, "name", "'\(name.value)' must be the file's base name: the file must be called \(name.value).yaml, not \(FlavourRules.printable(base))")
        }
        try checkImageEntries(files: files.map { ($0.path, $0.node) }, links: links.map { ($0.path, $0.node) }, mask: mask)
        let (kindSettings, methodSettings) = try decodeOwnSettings(ownEntries, artefact: artefact, start: start)

        var f = Flavour(name: name.value, description: description, artefact: artefact, start: start, packages: packages,
                        kernelParams: kernelParams, components: components, mask: mask,
                        files: Dictionary(files.map { ($0.path, $0.content) }, uniquingKeysWith: { a, _ in a }),
                        links: Dictionary(links.map { ($0.path, $0.target) }, uniquingKeysWith: { a, _ in a }),
                        kindSettings: kindSettings, methodSettings: methodSettings, bootTimeout: bootTimeout)
        f.file = file
        f.isDefault = isDefault
        return f
    }

    /// The artefact kind's and the start method's own keys, each read by its settings type; a key
    /// that only other kinds or methods read is refused, naming them.
    func decodeOwnSettings(_ entries: [(key: String, keyNode: Node, value: Node)], artefact: String,
                           start: String) throws -> (kind: any FlavourSettings, method: any FlavourSettings) {
        let kindType = names.kindSettings[artefact] ?? NoSettings.self
        let methodType = names.methodSettings[start] ?? NoSettings.self
        for e in entries where !kindType.keys.contains(e.key) && !methodType.keys.contains(e.key) {
            let kinds = names.artefactKinds.filter { names.kindSettings[$0]?.keys.contains(e.key) == true }
            let methods = names.startMethods.filter { names.methodSettings[$0]?.keys.contains(e.key) == true }
            var readers: [String] = []
            if !kinds.isEmpty { readers.append((kinds.count > 1 ? "artefact kinds " : "artefact kind ") + kinds.joined(separator: ", ")) }
            if !methods.isEmpty { readers.append((methods.count > 1 ? "start methods " : "start method ") + methods.joined(separator: ", ")) }
            let many = kinds.count + methods.count > 1
            throw fail(e.keyNode, e.key, "only \(readers.joined(separator: " and ")) \(many ? "read" : "reads") it; this flavour's "
                       + (kinds.isEmpty ? "start method is \(start)" : methods.isEmpty ? "artefact is \(artefact)"
                          : "artefact is \(artefact) and its start method \(start)"))
        }
        func section(_ type: any FlavourSettings.Type) -> FlavourSection {
            FlavourSection(parser: self, entries: Dictionary(entries.filter { type.keys.contains($0.key) }.map { ($0.key, $0.value) },
                                                             uniquingKeysWith: { a, _ in a }))
        }
        return (try kindType.decode(section(kindType)), try methodType.decode(section(methodType)))
    }

    /// One of the `known` names; a typo gets the nearest.
    func choice(_ node: Node, _ key: String, _ known: [String], _ what: String) throws -> String {
        let s = try string(node, key)
        if known.contains(s) { return s }
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

    func parseKadeploy(_ node: Node, _ key: String) throws -> TarballSettings {
        var settings = TarballSettings()
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
