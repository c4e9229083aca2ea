// libFuzzer target: what nxc-agent decodes at boot. The deployment document reaches a node
// from the kernel command line, a file or the network (nxc.deployment_url), and the kernel
// command line itself is read from /proc/cmdline. This file is compiled into the agent's
// own module (its types are internal), without the agent's main.swift.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAgent(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // The input as a deployment document (any source) and as /etc/nxc/composition.json.
    decodeDeployment(bytes, origin: "fuzz/deployment.json")
    if let roles = try? CompositionRoles(bytes: bytes, origin: "fuzz/composition.json") {
        for role in roles.services.keys { _ = roles.unitsForeign(to: role) }
    }
    // The input as a kernel command line, as BootContext reads it.
    let words = BootContext.commandLineWords(String(decoding: bytes, as: UTF8.self))
    let parameters = BootContext.parameters(words)
    if let text = parameters["nxc.deployment"], let decoded = Base64.decode(text) {
        decodeDeployment(decoded, origin: "kernel command line (nxc.deployment)")
    }
    if let url = parameters["nxc.deployment_url"] { _ = try? HTTPURL(url) }
    return 0
}

/// Decodes a deployment document and reads it the way `boot` does.
private func decodeDeployment(_ bytes: [UInt8], origin: String) {
    do {
        let deployment = try Deployment(bytes: bytes, origin: origin)
        for name in deployment.nodeNames { _ = try deployment.node(name) }
    } catch {
        _ = "\(error)"
    }
}
