import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NXCNames
import Yams

extension Composition {
    /// Reads and validates a composition file. Every error names the file, line, column and key.
    public static func load(path: String) throws -> Composition {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: path) else {
            throw CompositionError(file: path, "cannot read the composition file (does it exist?)")
        }
        let text: String
        do { text = try YAMLLimits.composition.read(path: path) } catch let e as YAMLLimitError {
            throw CompositionError(file: path, e.message)
        }
        let folder = url.deletingLastPathComponent()
        return try parse(text, file: path, directory: folder.path,
                         defaultName: defaultName(forFolder: folder.lastPathComponent))
    }

    /// A folder name made into a valid composition name ("My_Project" → "my-project").
    public static func defaultName(forFolder folder: String) -> String {
        let mapped = String(folder.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" })
        let trimmed = mapped.split(separator: "-", omittingEmptySubsequences: true).joined(separator: "-")
        return trimmed.isEmpty ? "composition" : String(trimmed.prefix(63))
    }

    /// Parses composition text; `directory` resolves `source:` files, `defaultName` is used when `name:` is absent.
    public static func parse(_ text: String, file: String, directory: String, defaultName: String) throws -> Composition {
        var parser = CompositionParser(file: file, directory: directory)
        return try parser.parse(text, defaultName: defaultName)
    }
}


/// The limits on the files a composition puts into its image (`files:`, inline or from `source:`).
public enum FileLimits {
    public static let each = 16 << 20
    public static let total = 64 << 20

    static func eachMessage(_ src: String?) -> String {
        (src.map { "source file '\($0)'" } ?? "the content") + " is larger than \(each >> 20) MiB (the limit for one file of a composition)"
    }
}

/// RFC 1123 host name label, lowercase.
public func isHostname(_ s: String) -> Bool {
    guard (1...63).contains(s.utf8.count), !s.hasPrefix("-"), !s.hasSuffix("-") else { return false }
    return s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
}

/// Debian policy 5.6.7: lowercase letters, digits, '+', '-', '.', at least two characters, starting alphanumeric.
public func isPackageName(_ s: String) -> Bool {
    guard s.utf8.count >= 2, let f = s.utf8.first, (f >= 97 && f <= 122) || (f >= 48 && f <= 57) else { return false }
    return s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 43 || $0 == 45 || $0 == 46 }
}
