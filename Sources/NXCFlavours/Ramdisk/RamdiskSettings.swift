import Foundation

/// What the ramdisk kind reads from a flavour file: the kernel modules and firmware the initrd
/// carries, and whether it keeps the kernel under /boot.
public struct RamdiskSettings: FlavourSettings, Hashable {
    public static let keys = ["modules", "firmware", "keep_kernel"]
    /// Kernel modules kept (names, or paths under kernel/ ending in '/' for whole folders), with their dependencies.
    public var modules: [String] = []
    /// Firmware kept: folders or files under /usr/lib/firmware; empty keeps all.
    public var firmware: [String] = []
    /// Whether the ramdisk keeps the kernel under /boot, so that a node can kexec itself again.
    public var keepKernel = false

    public init() {}

    public static func decode(_ s: FlavourSection) throws -> RamdiskSettings {
        var r = RamdiskSettings()
        r.modules = try s.list("modules", "module", FlavourRules.moduleProblem) ?? []
        r.firmware = try s.list("firmware", "firmware path", FlavourRules.firmwareProblem) ?? []
        r.keepKernel = try s.bool("keep_kernel") ?? false
        return r
    }
}
