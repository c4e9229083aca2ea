import Foundation

/// Owners, modes, device nodes and extended attributes of a system tree, kept beside the tree
/// when its files cannot carry them: a normal user who unpacks an image owns every file, cannot
/// make device nodes and cannot set `security.*` attributes. `ArchiveWriter.addTree(…, ownership:)`
/// writes what the record says, so such a tree packs into the same archive members as one made by root.
public struct TreeOwnership: Sendable, Equatable {
    /// A file the tree holds as an empty placeholder because its owner could not create it.
    public enum Special: Sendable, Equatable {
        case characterDevice(major: UInt32, minor: UInt32)
        case blockDevice(major: UInt32, minor: UInt32)
        case fifo
    }

    public struct ExtendedAttribute: Sendable, Equatable {
        public var name: String
        public var value: [UInt8]

        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    public struct Entry: Sendable, Equatable {
        public var uid: Int64
        public var gid: Int64
        /// Permission bits, set-id and sticky bits included (0o7777).
        public var mode: UInt32
        public var special: Special?
        /// Sorted by name.
        public var xattrs: [ExtendedAttribute]

        public init(uid: Int64, gid: Int64, mode: UInt32, special: Special? = nil, xattrs: [ExtendedAttribute] = []) {
            self.uid = uid
            self.gid = gid
            self.mode = mode & 0o7777
            self.special = special
            self.xattrs = xattrs.sorted { $0.name < $1.name }
        }
    }

    /// By path inside the tree, as `addTree` names them: "/usr/bin/ping"; "/" is the tree itself.
    public var entries: [String: Entry]

    public init(entries: [String: Entry] = [:]) {
        self.entries = entries
    }

    /// The record's name beside the tree in a store entry.
    public static let fileName = "ownership"
    static let header = "nxc-ownership 1"

    /// One line per path, sorted: `PATH MODE UID GID [c|bMAJOR,MINOR | p] [xNAME=HEX]…`, where PATH and
    /// NAME escape '%', spaces, control and non-ASCII bytes as %XX.
    public func encoded() -> [UInt8] {
        var out = Array((Self.header + "\n").utf8)
        for path in entries.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            guard let e = entries[path] else { continue }
            var line = Self.escape(path) + " " + String(e.mode, radix: 8) + " \(e.uid) \(e.gid)"
            switch e.special {
            case .characterDevice(let major, let minor)?: line += " c\(major),\(minor)"
            case .blockDevice(let major, let minor)?: line += " b\(major),\(minor)"
            case .fifo?: line += " p"
            case nil: break
            }
            for x in e.xattrs {
                line += " x" + Self.escape(x.name) + "=" + x.value.map { Self.hexDigits[Int($0 >> 4)] + Self.hexDigits[Int($0 & 15)] }.joined()
            }
            out += Array((line + "\n").utf8)
        }
        return out
    }

    /// Parses `encoded()`; `origin` names the file in errors.
    public init(decoding bytes: [UInt8], origin: String) throws {
        var lines = bytes.split(separator: 10, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first, String(decoding: first, as: UTF8.self) == Self.header else {
            throw ArchiveError(path: origin, operation: "read ownership record", message: "line 1: expected '\(Self.header)'")
        }
        var entries: [String: Entry] = [:]
        for (i, raw) in lines.enumerated().dropFirst() {
            func bad(_ why: String) -> ArchiveError {
                ArchiveError(path: origin, operation: "read ownership record", message: "line \(i + 1): \(why)")
            }
            let fields = raw.split(separator: 32).map { String(decoding: $0, as: UTF8.self) }
            guard fields.count >= 4, let path = Self.unescape(fields[0]), path.hasPrefix("/") else {
                throw bad("expected 'PATH MODE UID GID'")
            }
            guard let mode = UInt32(fields[1], radix: 8), mode <= 0o7777,
                  let uid = Int64(fields[2]), uid >= 0, let gid = Int64(fields[3]), gid >= 0 else {
                throw bad("bad mode, uid or gid for \(path)")
            }
            var entry = Entry(uid: uid, gid: gid, mode: mode)
            for f in fields.dropFirst(4) {
                if f == "p" {
                    entry.special = .fifo
                } else if let kind = f.first, kind == "c" || kind == "b" {
                    let numbers = f.dropFirst().split(separator: ",")
                    guard numbers.count == 2, let major = UInt32(numbers[0]), let minor = UInt32(numbers[1]) else {
                        throw bad("bad device numbers '\(f)' for \(path)")
                    }
                    entry.special = kind == "c" ? .characterDevice(major: major, minor: minor) : .blockDevice(major: major, minor: minor)
                } else if f.hasPrefix("x"), let eq = f.firstIndex(of: "="),
                          let name = Self.unescape(String(f[f.index(after: f.startIndex)..<eq])),
                          let value = Self.unhex(f[f.index(after: eq)...]) {
                    entry.xattrs.append(ExtendedAttribute(name: name, value: value))
                } else {
                    throw bad("unknown field '\(f)' for \(path)")
                }
            }
            entry.xattrs.sort { $0.name < $1.name }
            entries[path] = entry
        }
        self.entries = entries
    }

    public static func load(path: String) throws -> TreeOwnership {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ArchiveError(path: path, operation: "read ownership record", message: String(cString: strerror(errno)))
        }
        return try TreeOwnership(decoding: Array(data), origin: path)
    }

    public func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(encoded()), attributes: [.posixPermissions: 0o644]) else {
            throw ArchiveError(path: path, operation: "write ownership record", message: String(cString: strerror(errno)))
        }
    }

    static let hexDigits = (0..<16).map { String($0, radix: 16, uppercase: true) }

    static func escape(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if b <= 0x20 || b >= 0x7f || b == UInt8(ascii: "%") {
                out += "%" + hexDigits[Int(b >> 4)] + hexDigits[Int(b & 15)]
            } else {
                out.unicodeScalars.append(Unicode.Scalar(b))
            }
        }
        return out
    }

    static func unescape(_ s: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.first {
            it = it.dropFirst()
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func unhex(_ s: Substring) -> [UInt8]? {
        let chars = Array(s.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let v = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
            i += 2
        }
        return out
    }
}
