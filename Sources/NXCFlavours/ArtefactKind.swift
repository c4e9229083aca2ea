import Foundation
import NXCBuild
import NXCComposition
import NXCStore

/// One file a build produced, as reported to the user and written to the manifest.
public struct Artefact: Sendable, Codable, Equatable {
    public var name: String
    public var path: String
    public var size: Int64
    public var sha256: String

    public init(path: String) throws {
        self.path = path
        name = URL(fileURLWithPath: path).lastPathComponent
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        size = (attrs[.size] as? NSNumber)?.int64Value ?? 0
        sha256 = try NXCStore.sha256(file: path)
    }
}

/// Everything an artefact kind needs to emit its files.
public struct ArtefactContext: Sendable {
    public var composition: Composition
    public var flavour: Flavour
    public var rootfs: BuiltRootfs
    public var payload: ImagePayload
    public var store: Store
    /// A fresh, empty folder; the caller moves it into `build/<composition>/<flavour>/` when all went well.
    public var outputDirectory: String
    /// Where the output folder ends up (for files that name an artefact by its path).
    public var finalDirectory: String
    public var progress: @Sendable (String) -> Void

    public init(composition: Composition, flavour: Flavour, rootfs: BuiltRootfs, payload: ImagePayload,
                store: Store, outputDirectory: String, finalDirectory: String? = nil,
                progress: @escaping @Sendable (String) -> Void) {
        self.finalDirectory = finalDirectory ?? outputDirectory
        self.composition = composition
        self.flavour = flavour
        self.rootfs = rootfs
        self.payload = payload
        self.store = store
        self.outputDirectory = outputDirectory
        self.progress = progress
    }
}

/// Turns a root filesystem and the image payload into a flavour's files. One folder per kind;
/// NXCDeploy's `Registry` lists them, and a flavour file names one (`artefact:`).
public protocol ArtefactKind: Sendable {
    /// What a flavour file's `artefact:` says to get this kind.
    var name: String { get }
    /// The settings it reads from the flavour file (its own keys); `NoSettings` by default.
    var settingsType: any FlavourSettings.Type { get }
    func emit(_ context: ArtefactContext) async throws -> [Artefact]
}

extension ArtefactKind {
    public var settingsType: any FlavourSettings.Type { NoSettings.self }
}
