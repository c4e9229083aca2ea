// libFuzzer target: role-distribution files (`nxc start roles.yaml`) and machine files
// (`-m FILE`, `$OAR_NODEFILE`), the deploy-time inputs that name hosts. Both are shared
// between users of a testbed; the harness then binds what parsed the way `nxc start` does.
import Foundation
import NXCComposition
import NXCDeploy

/// The composition the distributions are bound to: three roles, one of count 2.
private let composition: Composition? = try? Composition.parse(
    "roles:\n  server:\n  client:\n    count: 2\n  nfs:\n",
    file: "fuzz/composition.yaml", directory: "/nonexistent/nxc-fuzz", defaultName: "fuzz")

/// A reservation of five hosts, in the forms a machine file allows.
private let reserved = [
    TestbedHost(name: "node-1"), TestbedHost(name: "node-2", port: 2222), TestbedHost(name: "node-3", user: "root"),
    TestbedHost(name: "fe80::1", port: 22), TestbedHost(name: "node-5"),
]

/// `RoleDistribution.overrides(fromFile:)` reads a path: the input goes through one file per process.
private let scratchFile = (ProcessInfo.processInfo.environment["NXC_FUZZ_TMP"] ?? NSTemporaryDirectory())
    + "/nxc-fuzz-roles-\(getpid()).yaml"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoleDistribution(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    guard let composition, FileManager.default.createFile(atPath: scratchFile, contents: bytes) else { return 0 }
    defer { try? FileManager.default.removeItem(atPath: scratchFile) }
    if let overrides = try? RoleDistribution.overrides(fromFile: scratchFile) {
        _ = try? RoleDistribution.resolve(composition, overrides: overrides, allowHosts: true)
        _ = try? RoleDistribution.bind(composition, overrides: overrides, hosts: reserved, source: "fuzz/machines")
    }
    _ = RoleDistribution.isDistributionFile(scratchFile)
    // The same bytes as a machine file, bound with the composition's own counts.
    if let text = String(data: bytes, encoding: .utf8), let hosts = try? HostList.parse(text, file: "fuzz/machines") {
        _ = try? RoleDistribution.bind(composition, overrides: [], hosts: hosts, source: "fuzz/machines")
    }
    return 0
}
