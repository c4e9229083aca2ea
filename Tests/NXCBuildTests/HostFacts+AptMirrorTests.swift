import Foundation
import XCTest
@testable import NXCBuild

/// The host's mirror is held to the rule every mirror follows before it reaches mmdebstrap.
final class HostFactsAptMirrorTests: XCTestCase {
    func root(_ files: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "nxc-apt-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/etc/apt/sources.list.d", withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/etc/apt/" + name)) }
        return dir
    }

    func testFirstUsableMirror() throws {
        let dir = try root(["sources.list": """
            # deb http://commented.example/debian bookworm main
            deb http://security.debian.org/debian-security bookworm-security main
            deb [ arch=amd64 signed-by=/usr/share/keyrings/x.gpg ] http://mirror.example/debian bookworm main
            """])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(HostFacts.aptMirror(root: dir), "http://mirror.example/debian")
    }

    func testDeb822Sources() throws {
        let dir = try root(["sources.list.d/debian.sources": "Types: deb\nURIs: https://deb.example/debian\nSuites: bookworm\n",
                            "sources.list.d/ignored.save": "deb http://not-read.example/debian bookworm main\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(HostFacts.aptMirror(root: dir), "https://deb.example/debian")
    }

    /// A source the mirror rule refuses is passed over (before: the first http-looking word was used).
    func testRefusedMirrorsArePassedOver() throws {
        let dir = try root(["sources.list": """
            deb http://quote"d.example/debian bookworm main
            deb http://ok.example/debian bookworm main
            """])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(HostFacts.aptMirror(root: dir), "http://ok.example/debian")
        let none = try root(["sources.list": "deb http:///debian bookworm main\n"])
        defer { try? FileManager.default.removeItem(atPath: none) }
        XCTAssertEqual(HostFacts.aptMirror(root: none), "http://deb.debian.org/debian")
    }
}
