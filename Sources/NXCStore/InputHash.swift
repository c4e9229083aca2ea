import Foundation

/// Hash of everything an artefact is made from. Fields are length-prefixed so that
/// ("ab","c") and ("a","bc") differ.
public struct InputHash {
    private var hasher = SHA256Digest()

    public init(_ kind: String) { add("kind", kind) }

    public mutating func add(_ label: String, _ value: String) { add(label, Array(value.utf8)) }

    public mutating func add(_ label: String, _ values: [String]) {
        add(label, String(values.count))
        for v in values { add(label, v) }
    }

    public mutating func add(_ label: String, _ bytes: [UInt8]) {
        // Copy on write: a copied InputHash goes on independently.
        if !isKnownUniquelyReferenced(&hasher) { hasher = hasher.copy() }
        for part in [Array(label.utf8), bytes] {
            var n = UInt64(part.count).bigEndian
            withUnsafeBytes(of: &n) { hasher.update($0) }
            hasher.update(part)
        }
    }

    /// Adds a file's bytes (for inputs that live on disk, like the agent binary).
    public mutating func addFile(_ label: String, path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw StoreError.unreadable(path) }
        add(label, [UInt8](data))
    }

    /// Lowercase hex SHA-256, truncated to 32 characters for store paths.
    public func finalize() -> String {
        String(SHA256Digest.hex(hasher.copy().finalize()).prefix(32))
    }
}

/// SHA-256 of a file, streamed, as lowercase hex.
public func sha256(file path: String) throws -> String {
    guard let h = FileHandle(forReadingAtPath: path) else { throw StoreError.unreadable(path) }
    defer { try? h.close() }
    let hasher = SHA256Digest()
    while true {
        let chunk = h.readData(ofLength: 1 << 20)
        if chunk.isEmpty { break }
        chunk.withUnsafeBytes { hasher.update($0) }
    }
    return SHA256Digest.hex(hasher.finalize())
}

/// SHA-256 of a file's first `count` bytes, as lowercase hex; nil when the file is shorter.
public func sha256(file path: String, firstBytes count: Int) throws -> String? {
    guard let h = FileHandle(forReadingAtPath: path) else { throw StoreError.unreadable(path) }
    defer { try? h.close() }
    let hasher = SHA256Digest()
    var left = count
    while left > 0 {
        let chunk = h.readData(ofLength: min(left, 1 << 20))
        if chunk.isEmpty { return nil }
        chunk.withUnsafeBytes { hasher.update($0) }
        left -= chunk.count
    }
    return SHA256Digest.hex(hasher.finalize())
}

/// SHA-256 of bytes in memory, as lowercase hex.
public func sha256(bytes: [UInt8]) -> String {
    let hasher = SHA256Digest()
    hasher.update(bytes)
    return SHA256Digest.hex(hasher.finalize())
}
