import XCTest
import NXCStore

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        // FIPS 180-2 examples.
        XCTAssertEqual(sha256(bytes: Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(sha256(bytes: []), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha256(bytes: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testFileMatchesBytes() throws {
        let path = NSTemporaryDirectory() + "nxc-sha-\(getpid())"
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try sha256(file: path), sha256(bytes: bytes))
    }

    /// The store's keys did not change when the hash moved from swift-crypto to libcrypto.
    func testInputHashIsStableAndACopyGoesOnAlone() {
        var a = InputHash("base")
        a.add("suite", "bookworm")
        var b = a
        b.add("packages", ["curl"])
        XCTAssertEqual(a.finalize(), a.finalize(), "finalize does not consume")
        var a2 = InputHash("base")
        a2.add("suite", "bookworm")
        XCTAssertEqual(a.finalize(), a2.finalize(), "adding to a copy leaves the original alone")
        XCTAssertNotEqual(a.finalize(), b.finalize())
        XCTAssertEqual(a.finalize(), "537f988b78d5f34c69a0152ec00c4edf", "key value pinned (computed independently: length-prefixed fields, SHA-256)")
    }
}
