import NXCFlavours

/// What the qemu start method reads from a flavour file: the memory of each VM (a role's own
/// `memory:` in the composition wins). Other methods' flavours have no `memory:`: hosts and
/// containers have the memory they have.
public struct QemuSettings: FlavourSettings, Hashable {
    public static let keys = ["memory"]
    /// MiB of each VM.
    public var memory = 1024

    public init() {}

    public static func decode(_ s: FlavourSection) throws -> QemuSettings {
        var q = QemuSettings()
        q.memory = try s.memory("memory") ?? q.memory
        return q
    }
}
