import Foundation
import XCTest
@testable import NXCComposition

final class CompositionTests: XCTestCase {
    func parse(_ text: String, name: String = "test") throws -> Composition {
        try Composition.parse(text, file: "composition.yaml", directory: NSTemporaryDirectory(), defaultName: name)
    }

    func testWebserverExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let c = try Composition.load(path: root.appendingPathComponent("compositions/webserver/composition.yaml").path)
        XCTAssertEqual(c.name, "webserver")
        XCTAssertEqual(c.roles.map(\.name), ["server", "client"])
        XCTAssertEqual(c.role(named: "client")?.hostNames(), ["client1", "client2"])
        XCTAssertEqual(c.role(named: "server")?.hostNames(), ["server"])
        XCTAssertEqual(c.role(named: "server")?.services.map(\.value), ["nginx"])
        XCTAssertEqual(c.allPackages, ["curl", "nginx-light", "wrk"])
        let file = try XCTUnwrap(c.role(named: "server")?.files.first)
        XCTAssertEqual(file.path, "/var/www/html/index.html")
        XCTAssertEqual(String(decoding: file.content, as: UTF8.self), "hello from nxc\n")
        XCTAssertEqual(file.mode, 0o644)
        XCTAssertNotNil(c.test)
    }

    func testDefaultsAndPositions() throws {
        let c = try parse("""
            roles:
              node:
                packages: [iproute2, curl]
                memory: 2G
                files:
                  /etc/motd: { content: "hi\\n", mode: "600" }
            """, name: "my-project")
        XCTAssertEqual(c.name, "my-project")
        XCTAssertEqual(c.distribution.suite, "bookworm")
        XCTAssertNil(c.distribution.mirror)
        let role = try XCTUnwrap(c.roles.first)
        XCTAssertEqual(role.count, 1)
        XCTAssertEqual(role.memoryMiB, 2048)
        XCTAssertEqual(role.files.first?.mode, 0o600)
        // Positions point at the value, 1-based.
        XCTAssertEqual(role.packages[1].location.line, 3)
        XCTAssertEqual(role.packages[1].key, "roles.node.packages[1]")
        XCTAssertEqual(c.location(ofPackage: "curl")?.location.line, 3)
    }

    func testEmptyRoleIsAllowed() throws {
        let c = try parse("roles:\n  hello:\n")
        XCTAssertEqual(c.roles.map(\.name), ["hello"])
        XCTAssertEqual(c.roles.first?.count, 1)
    }

    func testDefaultNameFromFolder() {
        XCTAssertEqual(Composition.defaultName(forFolder: "My_Project"), "my-project")
        XCTAssertEqual(Composition.defaultName(forFolder: "__"), "composition")
        XCTAssertEqual(Composition.defaultName(forFolder: "webserver"), "webserver")
    }

    func testHostnameAndPackageRules() {
        XCTAssertTrue(isHostname("client1"))
        XCTAssertFalse(isHostname("-a"))
        XCTAssertFalse(isHostname("a_b"))
        XCTAssertFalse(isHostname("Server"))
        XCTAssertFalse(isHostname(String(repeating: "a", count: 64)))
        XCTAssertTrue(isPackageName("libstdc++6"))
        XCTAssertTrue(isPackageName("nginx-light"))
        XCTAssertFalse(isPackageName("x"))
        XCTAssertFalse(isPackageName("Nginx"))
    }

    /// Every file of the corpus fails with exactly the message in its `.expected` file.
    func testBadCompositionCorpus() throws {
        let dir = try XCTUnwrap(Bundle.module.resourceURL?.appendingPathComponent("BadCompositions"))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 20)
        for f in files {
            let expectedPath = dir.appendingPathComponent(f.replacingOccurrences(of: ".yaml", with: ".expected")).path
            let expected = try String(contentsOfFile: expectedPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let text = try String(contentsOfFile: dir.appendingPathComponent(f).path, encoding: .utf8)
            do {
                _ = try Composition.parse(text, file: f, directory: dir.path, defaultName: "bad")
                XCTFail("\(f) was accepted; expected: \(expected)")
            } catch let e as CompositionError {
                XCTAssertEqual(e.description, expected, f)
                XCTAssertTrue(e.description.hasPrefix(f), "\(f): the error names the file")
            }
        }
    }
}
