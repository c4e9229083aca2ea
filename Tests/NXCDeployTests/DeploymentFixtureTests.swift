import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment

/// The deployment document has two readers and one writer: this host code (Codable) writes and
/// reads it, the agent decodes it by hand. Both test against one fixture,
/// Tests/fixtures/deployment.json (the agent in Tests/agent/run.sh): a key that one side adds,
/// renames or drops and the other does not fails one of the two.
final class DeploymentFixtureTests: XCTestCase {
    static let fixture = DeployTests.repo + "/Tests/fixtures/deployment.json"

    func json(_ data: Data) throws -> NSDictionary {
        try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? NSDictionary)
    }

    /// The host reads every key of the fixture and writes exactly those keys, with the same values.
    func testHostWritesExactlyTheFixture() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.fixture))
        let doc = try Deployment.load(path: Self.fixture)
        XCTAssertEqual(try json(try doc.encoded()), try json(bytes), "the host's document differs from \(Self.fixture)")
    }

    /// The fixture holds each field of the model at least once, so that none goes untested by the agent.
    func testFixtureCoversTheModel() throws {
        let doc = try Deployment.load(path: Self.fixture)
        XCTAssertEqual(doc.version, 1)
        XCTAssertFalse(doc.authorizedKeys.isEmpty)
        XCTAssertEqual(doc.order, ["server", "client1", "client2", "nfs"])
        let nodes = doc.order.compactMap { doc.nodes[$0] }
        XCTAssertTrue(nodes.contains { $0.ssh != nil }, "a node with an SSH endpoint")
        XCTAssertTrue(nodes.contains { $0.interfaces == nil }, "a node without interfaces")
        XCTAssertTrue(nodes.contains { $0.interfaces?.isEmpty == true }, "a node with an empty list of interfaces")
        XCTAssertTrue(nodes.contains { $0.interfaces?.contains { $0.routes?.isEmpty == false } == true }, "an interface with routes")
        XCTAssertTrue(nodes.contains { $0.address != nil })
    }

    /// What the start methods write has no key outside the fixture's (a new one must be added there,
    /// which the agent's tests then read).
    func testStartMethodsWriteOnlyFixtureKeys() throws {
        func keys(_ any: Any, _ prefix: String = "") -> Set<String> {
            var out = Set<String>()
            if let d = any as? [String: Any] {
                for (k, v) in d {
                    // Node names are data, not keys of the format.
                    let name = prefix == "nodes" ? "nodes.*" : (prefix.isEmpty ? k : prefix + "." + k)
                    out.insert(name)
                    out.formUnion(keys(v, name))
                }
            } else if let a = any as? [Any] {
                for v in a { out.formUnion(keys(v, prefix + "[]")) }
            }
            return out
        }
        let fixtureKeys = keys(try json(try Data(contentsOf: URL(fileURLWithPath: Self.fixture))))
        let nodes = [(node: "server", role: "server"), (node: "client1", role: "client")]
        let written = [
            QemuStart.deployment(composition: "c", flavour: "vm-ramdisk", nodes: nodes, keys: ["ssh-ed25519 K"], ports: ["server": 2222]),
            DockerStart.deployment(composition: "c", flavour: "docker", nodes: nodes, keys: ["ssh-ed25519 K"]),
        ]
        for doc in written {
            let k = keys(try json(try doc.encoded()))
            XCTAssertTrue(k.isSubset(of: fixtureKeys), "keys not in the fixture: \(k.subtracting(fixtureKeys).sorted())")
        }
    }
}
