import Foundation
import XCTest
import NXCComposition
@testable import NXCDeployment

/// Role-distribution files (`nxc start roles.yaml`): read from the YAML node tree with lines, names
/// checked, within limits. Before, `Yams.load` into `Any`: no lines, any string as a role or host, a
/// trap on a non-scalar key, a crash on deep nesting, minutes on an alias bomb.
final class RoleDistributionTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "nxc-roles-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func file(_ text: String) throws -> String {
        let p = dir + "/roles.yaml"
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    func webserver() throws -> Composition {
        try Composition.parse("roles:\n  server:\n  client:\n    count: 2\n", file: "composition.yaml", directory: dir, defaultName: "w")
    }

    func error(_ text: String, composition: Composition? = nil) throws -> String {
        let p = try file(text)
        do {
            let o = try RoleDistribution.overrides(fromFile: p, composition: composition)
            XCTFail("accepted: \(o)")
            return ""
        } catch let e as RoleDistribution.FileError {
            return e.description.replacingOccurrences(of: dir + "/", with: "")
        }
    }

    func testEntriesWithLines() throws {
        let entries = try RoleDistribution.parse("server: 1\nclient: [h3, \"root@h2:2222\", \"[fe80::1]:22\"]\nnfs: h4,h5\n", file: "r.yaml")
        XCTAssertEqual(entries.map(\.override), ["client=h3,root@h2:2222,[fe80::1]:22", "nfs=h4,h5", "server=1"])
        XCTAssertEqual(entries.map(\.line), [2, 3, 1])
        let p = try file("server: 1\nclient: [h3, h2]\n")
        XCTAssertTrue(RoleDistribution.isDistributionFile(p))
        XCTAssertEqual(try RoleDistribution.overrides(fromFile: p, composition: try webserver()), ["client=h3,h2", "server=1"])
    }

    func testUnknownRoleNamesTheNearest() throws {
        XCTAssertEqual(try error("server: 1\nclinet: 2\n", composition: try webserver()),
                       "roles.yaml:2:1: error: clinet: no role 'clinet' in the composition; did you mean 'client'? (roles: server, client)")
        XCTAssertThrowsError(try RoleDistribution.resolve(try webserver(), overrides: ["sever=2"])) { e in
            XCTAssertEqual("\(e)", "error: -r sever=2: no role 'sever' in the composition; did you mean 'server'? (roles: server, client)")
        }
    }

    func testBadNamesAndValues() throws {
        XCTAssertEqual(try error("\"a;b\": 1\n"), "roles.yaml:1:1: error: a role name is a host name (lowercase letters, digits and '-', at most 63 characters)")
        XCTAssertEqual(try error("client: [\"-oProxyCommand=sh\"]\n"),
                       "roles.yaml:1:9: error: client: '-oProxyCommand=sh' is not a host (a host name or address, optionally user@ and :port)")
        XCTAssertEqual(try error("client: \"h1 h2\"\n"),
                       "roles.yaml:1:9: error: client: 'h1 h2' is not a host (a host name or address, optionally user@ and :port)")
        XCTAssertEqual(try error("client: 1000\n"), "roles.yaml:1:9: error: client: '1000' is not a node count (0 to 999)")
        XCTAssertEqual(try error("client: []\n"), "roles.yaml:1:9: error: client: expected at least one host")
        XCTAssertEqual(try error("client: [[h1]]\n"), "roles.yaml:1:10: error: client: expected a host name, got a collection")
        XCTAssertEqual(try error("client: {a: b}\n"), "roles.yaml:1:9: error: client: expected a node count (0 to 999) or a list of hosts")
        XCTAssertEqual(try error("client: 1\nclient: 2\n"), "roles.yaml:2:1: error: client: duplicate role (first at line 1)")
        XCTAssertEqual(try error("client: [h1\n"), "roles.yaml:2:1: error: invalid YAML: did not find expected ',' or ']'")
        XCTAssertTrue(try error("").hasPrefix("roles.yaml: error: expected a mapping of role"))
        // A key that is not a scalar trapped in Yams.load (found by the fuzzer).
        XCTAssertEqual(try error("{[a]: 1}\n"), "roles.yaml:1:2: error: a role name is a host name (lowercase letters, digits and '-', at most 63 characters)")
    }

    func testLimits() throws {
        let deep = String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000)
        XCTAssertEqual(try error("client: " + deep + "\n"), "roles.yaml:1:138: error: nesting deeper than 64 levels (the limit for a role distribution file)")
        XCTAssertFalse(RoleDistribution.isDistributionFile(try file("client: " + deep + "\n")))
        var bomb = "a: &a [h, h, h, h, h, h, h, h, h, h]\n"
        for (prev, name) in zip("abcdefgh", "bcdefghi") {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(prev)", count: 10).joined(separator: ", ") + "]\n"
        }
        let started = Date()
        XCTAssertTrue(try error(bomb).contains("error: more than 262144 values once aliases are expanded"))
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        let big = String(repeating: "# padding\n", count: 110_000)
        XCTAssertEqual(try error(big), "roles.yaml: error: a role distribution file is limited to 1 MiB; this one has 1100000 bytes")
    }
}
