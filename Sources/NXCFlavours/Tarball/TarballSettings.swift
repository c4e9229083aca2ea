import Foundation

/// What the tarball kind reads from a flavour file: the Kadeploy environment description's settings
/// besides the image (Grid'5000's standard postinstall by default).
public struct TarballSettings: FlavourSettings, Hashable {
    public static let keys = ["kadeploy"]
    public var visibility: String?
    public var postinstall: Postinstall?
    public struct Postinstall: Sendable, Hashable {
        public var archive: String
        public var compression: String
        public var script: String
    }

    public init() {}

    public static func decode(_ s: FlavourSection) throws -> TarballSettings {
        guard let node = s.node("kadeploy") else { return TarballSettings() }
        return try s.parser.parseKadeploy(node, "kadeploy")
    }
}
