import Foundation
import NXCComposition
import Yams

/// What an artefact kind or a start method reads from the flavour file beyond what every flavour
/// has: its own keys (top-level, as users write them), decoded and checked by its own type. A key
/// of another kind or method is refused by name; the flavour keeps the decoded values
/// (`Flavour.kindSettings`, `Flavour.methodSettings`), and the kind or method reads its own back
/// as its own type (`Flavour.settings(as:)`).
public protocol FlavourSettings: Sendable {
    /// The flavour-file keys this kind or method reads.
    static var keys: [String] { get }
    /// The settings of a flavour file that gives none of `keys`.
    init()
    /// Reads the keys the file gives (`section`); errors name the file, line and key.
    static func decode(_ section: FlavourSection) throws -> Self
}

/// For a kind or method that reads no keys of its own.
public struct NoSettings: FlavourSettings {
    public static let keys: [String] = []
    public init() {}
    public static func decode(_ section: FlavourSection) throws -> NoSettings { NoSettings() }
}

/// The keys of one flavour file that belong to its artefact kind or start method, with the loader's checked readers.
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

    /// A memory size in MiB (`1024`, `512M`, `2G`), within `FlavourRules.memory`; nil when absent.
    public func memory(_ key: String) throws -> Int? {
        guard let v = entries[key] else { return nil }
        return try parser.memory(v, key)
    }

    /// The value's YAML node, for a kind in this module that reads a nested mapping with the parser's helpers.
    func node(_ key: String) -> Node? { entries[key] }
}

extension Flavour {
    /// This flavour's kind or method settings as their own type; the type's defaults when neither
    /// the flavour's kind nor its method reads that type (never, for a flavour the loader made).
    public func settings<S: FlavourSettings>(as: S.Type) -> S {
        kindSettings as? S ?? methodSettings as? S ?? S()
    }
}
