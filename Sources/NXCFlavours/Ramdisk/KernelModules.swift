import Foundation
import NXCBuild

/// The kernel of a root filesystem and the modules a ramdisk keeps.
struct KernelModules {
    let root: String
    let version: String

    init(root: String) throws {
        self.root = root
        let dir = root + "/usr/lib/modules"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { FileManager.default.fileExists(atPath: "\(dir)/\($0)/modules.dep") }.sorted()
        guard let v = versions.last else {
            throw BuildError.imageLacks("kernel modules in \(dir)", flavour: nil, package: "a kernel package such as linux-image-amd64")
        }
        version = v
    }

    var modulesDir: String { "\(root)/usr/lib/modules/\(version)" }
    var kernelPath: String { "\(root)/boot/vmlinuz-\(version)" }

    static func moduleName(_ path: Substring) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? ""
        for ext in [".xz", ".zst", ".gz", ".ko"] where base.hasSuffix(ext) { base = String(base.dropLast(ext.count)) }
        return base.replacingOccurrences(of: "-", with: "_")
    }

    /// Module files (relative to the modules folder) for `wanted`, with every dependency, from modules.dep.
    func select(_ wanted: [String]) throws -> [String] {
        guard let text = try? String(contentsOfFile: modulesDir + "/modules.dep", encoding: .utf8) else {
            throw BuildError.file("read", path: modulesDir + "/modules.dep", reason: "missing or not text")
        }
        var deps: [String: [String]] = [:]
        var byName: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let mod = String(line[..<colon])
            deps[mod] = line[line.index(after: colon)...].split(separator: " ").map(String.init)
            byName[Self.moduleName(line[..<colon])] = mod
        }
        var keep = Set<String>()
        func add(_ m: String) {
            guard keep.insert(m).inserted else { return }
            for d in deps[m] ?? [] { add(d) }
        }
        for w in wanted {
            if w.hasSuffix("/") {
                for m in deps.keys where m.hasPrefix(w) { add(m) }
            } else if let m = byName[w.replacingOccurrences(of: "-", with: "_")] {
                add(m)
            }
            // A name absent from modules.dep is built into the kernel (or not there): nothing to carry.
        }
        return keep.sorted()
    }

    /// The module file (relative to the modules folder) of each name in `names` that modules.dep
    /// lists; names it does not list (built in, or absent) are left out.
    func files(of names: [String]) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: modulesDir + "/modules.dep", encoding: .utf8) else {
            throw BuildError.file("read", path: modulesDir + "/modules.dep", reason: "missing or not text")
        }
        let wanted = Set(names.map { $0.replacingOccurrences(of: "-", with: "_") })
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = Self.moduleName(line[..<colon])
            if wanted.contains(name) { out[name] = String(line[..<colon]) }
        }
        return out
    }

    /// Writes the kept modules' metadata (depmod over only them) into `dir`/lib/modules/VERSION.
    func regenerateMetadata(kept: [String], in dir: String) throws -> String {
        let fm = FileManager.default
        let out = "\(dir)/lib/modules/\(version)"
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        for m in kept {
            let dst = "\(out)/\(m)"
            try fm.createDirectory(atPath: (dst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if link("\(modulesDir)/\(m)", dst) != 0 { try fm.copyItem(atPath: "\(modulesDir)/\(m)", toPath: dst) }
        }
        for f in ["modules.order", "modules.builtin", "modules.builtin.modinfo"] where fm.fileExists(atPath: "\(modulesDir)/\(f)") {
            try fm.copyItem(atPath: "\(modulesDir)/\(f)", toPath: "\(out)/\(f)")
        }
        guard Command.which("depmod") != nil || fm.isExecutableFile(atPath: "/usr/sbin/depmod") else {
            throw BuildError.toolMissing("depmod", package: "kmod")
        }
        let depmod = Command.which("depmod") ?? "/usr/sbin/depmod"
        try Command.run([depmod, "-b", dir, version], timeout: 300)
        return out
    }
}
