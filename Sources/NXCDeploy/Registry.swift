import Foundation
import NXCDeployment
import NXCFlavours

/// The one list of artefact kinds and start methods. Each is a type in its own folder
/// (`Sources/NXCFlavours/<Kind>/`, `Sources/NXCDeploy/<Method>/`) that says its own name; a flavour
/// file names one of each, and the loader accepts exactly the names listed here. Adding a kind or a
/// method is its folder and one line below; nothing else names them.
public enum Registry {
    public static let artefactKinds: [any ArtefactKind] = [
        RamdiskKind(),
        DockerImageKind(),
        TarballKind(),
        TreeKind(),
        NetrootKind(),
    ]

    public static let startMethods: [any StartMethod] = [
        QemuStart(),
        KexecStart(),
        DockerStart(),
        KadeployStart(),
        NspawnStart(),
        PxeStart(),
    ]

    /// The names flavour files may give.
    public static var flavourNames: FlavourNames {
        FlavourNames(artefactKinds: artefactKinds.map(\.name), startMethods: startMethods.map(\.name),
                     kindSettings: Dictionary(artefactKinds.map { ($0.name, $0.settingsType) }, uniquingKeysWith: { a, _ in a }),
                     methodSettings: Dictionary(startMethods.map { ($0.name, $0.settingsType) }, uniquingKeysWith: { a, _ in a }))
    }

    public static func artefactKind(named name: String) -> (any ArtefactKind)? { artefactKinds.first { $0.name == name } }
    public static func startMethod(named name: String) -> (any StartMethod)? { startMethods.first { $0.name == name } }
}

extension Flavour {
    /// The implementation of this flavour's `artefact:`. A flavour exists only as the loader made it,
    /// from the registry's names, so the name is always found.
    public var artefactKind: any ArtefactKind {
        guard let k = Registry.artefactKind(named: artefact) else {
            preconditionFailure("flavour \(name) (\(file)) names artefact kind '\(artefact)', which Registry does not list")
        }
        return k
    }

    /// The implementation of this flavour's `start:` (always found, as for `artefactKind`).
    public var startMethod: any StartMethod {
        guard let m = Registry.startMethod(named: start) else {
            preconditionFailure("flavour \(name) (\(file)) names start method '\(start)', which Registry does not list")
        }
        return m
    }

    // The flavour loader, with the registry's names.

    public static func load(path: String) throws -> Flavour { try load(path: path, names: Registry.flavourNames) }

    public static func parse(_ text: String, file: String) throws -> Flavour {
        try parse(text, file: file, names: Registry.flavourNames)
    }

    public static func named(_ name: String, project: String = FileManager.default.currentDirectoryPath) throws -> Flavour {
        try named(name, project: project, names: Registry.flavourNames)
    }

    public static func defaultName(project: String = FileManager.default.currentDirectoryPath) throws -> String {
        try defaultName(project: project, names: Registry.flavourNames)
    }

    public static func all(project: String = FileManager.default.currentDirectoryPath) -> [Flavour] {
        all(project: project, names: Registry.flavourNames)
    }

    public static func scan(project: String = FileManager.default.currentDirectoryPath) -> (flavours: [Flavour], errors: [FlavourError]) {
        scan(project: project, names: Registry.flavourNames)
    }
}
