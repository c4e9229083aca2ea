import Foundation
import NXCComposition
import Yams

/// What an artefact kind reads from the flavour file beyond what every flavour has: its own keys
/// (top-level, as users write them), decoded and checked by its own type. A key of another kind is
/// refused by name; the flavour keeps the decoded value (`Flavour.kindSettings`), and the kind
/// reads it back as its own type (`Flavour.settings(as:)`).
public protocol KindSettings: Sendable {
    /// The flavour-file keys this kind reads.
    static var keys: [String] { get }
    /// The settings of a flavour file that gives none of `keys`.
    init()
    /// Reads the keys the file gives (`section`); errors name the file, line and key.
    static func decode(_ section: FlavourSection) throws -> Self
}

/// A kind that reads no keys of its own.
public struct NoKindSettings: KindSettings {
    public static let keys: [String] = []
    public init() {}
    public static func decode(_ section: FlavourSection) throws -> NoKindSettings { NoKindSettings() }
}

/// The keys of one flavour file that belong to its artefact kind, with the loader's checked readers.
public struct FlavourSection {
    let parser: FlavourParser
    let entries: [String: Node]

    /// The keys given (a key with no value counts as absent, as for every optional key).
    public var keys: [String] { entries.keys.sorted() }

    /// A list of strings, each checked by `check` (nil: fine; otherwise why not); nil when absent.
    public func list(_ key: String, _ what: String, _ check: (String) -> String?) throws -> [String]? {
        guard let node = entries[key] else { return nil }
        return try parser.checkedList(node, key, what, check)
    }

    /// `true` or `false`; nil when absent.
    public func bool(_ key: String) throws -> Bool? {
        guard let v = entries[key] else { return nil }
        return try parser.bool(v, key)
    }

    /// The value's YAML node, for a kind in this module that reads a nested mapping with the parser's helpers.
    func node(_ key: String) -> Node? { entries[key] }
}

extension Flavour {
    /// This flavour's kind settings as the kind's own type; the type's defaults when the flavour's
    /// kind reads another type (never, for a flavour the loader made).
    public func settings<S: KindSettings>(as: S.Type) -> S {
        kindSettings as? S ?? S()
    }
}
