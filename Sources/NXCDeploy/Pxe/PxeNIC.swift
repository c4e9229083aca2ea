import Foundation

/// Which NIC driver a machine booting with iPXE needs, from the PCI IDs iPXE gives (`${netX/busid}`):
/// nxc's server answers `nic/<busid>` with that driver's initrd segment, so that a machine fetches
/// its own NIC's driver and firmware, not every driver of the flavour (`nic/all`, the fallback).
struct PxeNIC: Sendable {
    struct Alias: Sendable, Equatable {
        /// Four lowercase hex digits, or nil for any.
        var vendor: String?
        var device: String?
        var module: String
    }
    var aliases: [Alias]

    /// `PATTERN MODULE` lines of the build's nic.aliases (the kernel's modules.alias, PCI, NIC drivers).
    init(text: String) {
        aliases = text.split(separator: "\n").compactMap { line -> Alias? in
            let f = line.split(separator: " ")
            guard f.count == 2, f[0].hasPrefix("pci:v") else { return nil }
            var rest = Substring(f[0].dropFirst("pci:v".count))
            func field() -> String?? {
                if rest.hasPrefix("*") { rest = rest.dropFirst(); return .some(nil) }
                guard rest.count >= 8 else { return nil }
                let v = rest.prefix(8)
                guard v.allSatisfy(\.isHexDigit) else { return nil }
                rest = rest.dropFirst(8)
                return .some(String(v.suffix(4)).lowercased())
            }
            guard let vendor = field(), rest.hasPrefix("d") else { return nil }
            rest = rest.dropFirst()
            guard let device = field() else { return nil }
            // A class-only pattern (any vendor, any device) names no machine in particular.
            guard vendor != nil || device != nil else { return nil }
            return Alias(vendor: vendor, device: device, module: String(f[1]))
        }
    }

    /// `01-80-86-10-0e` (iPXE's busid as :hexhyp: bus type PCI, vendor, device) → ("8086", "100e").
    static func pciIDs(busID: String) -> (vendor: String, device: String)? {
        let b = busID.lowercased().split(separator: "-")
        guard b.count == 5, b[0] == "01", b.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else { return nil }
        return (String(b[1] + b[2]), String(b[3] + b[4]))
    }

    /// The driver for these IDs: one that names both, else one that names the vendor with any device.
    func module(vendor: String, device: String) -> String? {
        aliases.first { $0.vendor == vendor && $0.device == device }?.module
            ?? aliases.first { $0.vendor == vendor && $0.device == nil }?.module
    }
}
