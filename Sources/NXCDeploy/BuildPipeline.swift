import Foundation
import NXCBuild
import NXCComposition
import NXCFlavours
import NXCStore

/// What `nxc build` produced.
public struct BuildResult: Sendable {
    public var composition: Composition
    public var flavour: Flavour
    public var directory: String
    public var artefacts: [Artefact]
    public var ranMmdebstrap: Bool
    public var seconds: Double
}

/// parse → rootfs (store) → artefact kind → start method files → `build/<composition>/<flavour>/`.
public enum BuildPipeline {
    public static func build(project: Project, composition path: String?, flavour name: String, mirror: String?,
                             store: Store, progress: @escaping @Sendable (String) -> Void) async throws -> BuildResult {
        let started = Date()
        let composition = try Composition.load(path: project.compositionFile(path))
        let flavour = try Flavour.named(name, project: project.directory)
        guard let agent = DataFiles.agentBinary() else {
            throw BuildError.invalid("the nxc-agent binary was not found beside nxc; build it (`make`) or set NXC_AGENT")
        }
        await store.collectGarbage()
        var distribution = composition.distribution
        for c in flavour.components where !distribution.components.contains(c) { distribution.components.append(c) }
        let req = RootfsRequest(distribution: distribution,
                                mirror: mirror ?? composition.distribution.mirror ?? HostFacts.aptMirror(),
                                basePackages: flavour.packages, packages: composition.allPackages)
        let rootfs = try await RootfsBuilder(store: store, progress: progress).build(req, composition: composition)
        try RootfsBuilder.checkServices(of: composition, root: rootfs.root)

        let final = project.buildDirectory(composition: composition.name, flavour: flavour.name)
        let parent = (final as NSString).deletingLastPathComponent
        let fm = FileManager.default
        try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let tmp = "\(parent)/.\(flavour.name).tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        do {
            let ctx = ArtefactContext(composition: composition, flavour: flavour, rootfs: rootfs,
                                      payload: ImagePayload(composition: composition, agentBinary: agent, masked: flavour.mask,
                                                            files: flavour.files, links: flavour.links),
                                      store: store, outputDirectory: tmp, finalDirectory: final, progress: progress)
            var artefacts = try await flavour.artefact.implementation.emit(ctx)
            _ = try flavour.start.implementation.prepare(buildDirectory: tmp, composition: composition, flavour: flavour)
            let manifest = Manifest(composition: composition.name, flavour: flavour.name, rootfs: rootfs.hash,
                                    artefacts: artefacts.map { var a = $0; a.path = a.name; return a })
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            try writeAtomically(try enc.encode(manifest), to: tmp + "/manifest.json")
            // Swap the finished folder into place; the old one goes only after the new one is complete.
            let old = "\(parent)/.\(flavour.name).old-\(getpid())"
            if fm.fileExists(atPath: final) { try fm.moveItem(atPath: final, toPath: old) }
            try fm.moveItem(atPath: tmp, toPath: final)
            try? fm.removeItem(atPath: old)
            artefacts = artefacts.map { var a = $0; a.path = final + "/" + a.name; return a }
            return BuildResult(composition: composition, flavour: flavour, directory: final, artefacts: artefacts,
                               ranMmdebstrap: rootfs.ranMmdebstrap, seconds: Date().timeIntervalSince(started))
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    struct Manifest: Codable {
        var composition: String
        var flavour: String
        var rootfs: String
        var artefacts: [Artefact]
    }
}
