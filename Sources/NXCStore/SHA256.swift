import CCrypto

/// Streaming SHA-256 from Debian's libcrypto. A class because it owns the C context (freed in deinit);
/// `copy()` gives an independent hasher with the same state.
public final class SHA256Digest {
    private let context: OpaquePointer

    public init() {
        // EVP_MD_CTX_new fails only when memory is exhausted; there is nothing sensible left to do then.
        guard let ctx = EVP_MD_CTX_new() else { preconditionFailure("libcrypto: cannot allocate a digest context") }
        context = ctx
        EVP_DigestInit_ex(ctx, nxc_sha256(), nil)
    }

    private init(copying other: OpaquePointer) {
        guard let ctx = EVP_MD_CTX_new() else { preconditionFailure("libcrypto: cannot allocate a digest context") }
        context = ctx
        EVP_MD_CTX_copy_ex(ctx, other)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func copy() -> SHA256Digest { SHA256Digest(copying: context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The 32-byte digest. The hasher must not be used afterwards.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }

    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s = [UInt8]()
        s.reserveCapacity(digest.count * 2)
        for b in digest { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }
}
