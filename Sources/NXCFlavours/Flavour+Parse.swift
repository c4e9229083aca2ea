import Foundation
import NXCComposition
import NXCNames
import Yams

extension Flavour {
    /// Reads and validates a flavour file: a regular file named `<name>.yaml` within `YAMLLimits.flavour`
    /// (the open does not block, so a FIFO put where a flavour file is expected cannot hang nxc).
    /// Every error names the file, line, column and key.
    /// `names`: the artefact kinds and start methods it may name.
    public static func load(path: String, names: FlavourNames) throws -> Flavour {
        let text: String
        do { text = try YAMLLimits.flavour.read(path: path) } catch let e as YAMLLimitError { throw FlavourError(e) }
        return try parse(text, file: path, names: names)
    }

    /// Parses flavour text; `file` is the path it came from, whose base name the `name:` must equal.
    public static func parse(_ text: String, file: String, names: FlavourNames) throws -> Flavour {
        try FlavourParser(file: file, names: names).parse(text)
    }
}
