import Foundation
import NXCArchive

/// A root filesystem in the store.
public struct BuiltRootfs: Sendable {
    /// The directory holding the system tree.
    public var root: String
    public var hash: String
    public var ranMmdebstrap: Bool
    public var reused: Bool
    /// Every package of the image, with the SHA-256 of its .deb.
    public var packages: [InstalledPackage] = []
    /// Date of the mirror's Release file the packages were resolved against.
    public var mirrorDate: String?
    /// The ownership record of a tree a normal user built (owners, modes, device nodes and attributes
    /// its files cannot carry); nil when the files have them (a build as root).
    public var ownership: String?

    /// The record that archives of this tree must be written with (ArchiveWriter.addTree), if any.
    public func ownershipRecord() throws -> TreeOwnership? {
        try ownership.map { try TreeOwnership.load(path: $0) }
    }
}
