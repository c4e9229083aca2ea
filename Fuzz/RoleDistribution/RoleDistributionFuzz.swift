// libFuzzer target: the deploy-time inputs that come from others. Role-distribution files
// (`nxc start roles.yaml`) and machine files (`-m FILE`, `$OAR_NODEFILE`) are shared between
// the users of a testbed; what parses is bound to hosts the way `nxc start` does. The same
// bytes are also a request head to the deployment document's HTTP server, which anyone on
// the network can send.
import Foundation
import NXCComposition
@testable import NXCDeploy  // DeploymentServer.answer and headEnd are internal (the build uses -enable-testing)
import NXCDeployment

/// The composition the distributions are bound to: three roles, one of count 2.
private let composition: Composition? = try? Composition.parse(
    "roles:\n  server:\n  client:\n    count: 2\n  nfs:\n",
    file: "fuzz/composition.yaml", directory: "/nonexistent/nxc-fuzz", defaultName: "fuzz")

/// A reservation of five hosts, in the forms a machine file allows.
private let reserved = [
    TestbedHost(name: "node-1"), TestbedHost(name: "node-2", port: 2222), TestbedHost(name: "node-3", user: "root"),
    TestbedHost(name: "fe80::1", port: 22), TestbedHost(name: "node-5"),
]

/// A server that never starts: only its request parser is used. Its socket listens on the
/// loopback interface, on a port the system picks, and never accepts.
private let server = try? DeploymentServer(listen: "127.0.0.1", port: nil, document: Data("{}".utf8), log: { _ in })

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoleDistribution(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // The server answers the bytes up to the blank line that ends the head, once it has one.
    if let server, let end = DeploymentServer.headEnd(bytes) {
        _ = server.answer(Array(bytes[..<end]))
    }
    // The files are read as UTF-8 text (YAMLLimits.read, String(contentsOfFile:encoding:)).
    guard let composition, let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    do {
        let overrides = try RoleDistribution.parse(text, file: "fuzz/roles.yaml").map(\.override)
        _ = try? RoleDistribution.resolve(composition, overrides: overrides, allowHosts: true)
        _ = try? RoleDistribution.bind(composition, overrides: overrides, hosts: reserved, source: "fuzz/machines")
    } catch {
        _ = "\(error)"
    }
    // The same text as a machine file, bound with the composition's own counts.
    if let hosts = try? HostList.parse(text, file: "fuzz/machines") {
        _ = try? RoleDistribution.bind(composition, overrides: [], hosts: hosts, source: "fuzz/machines")
    }
    return 0
}
