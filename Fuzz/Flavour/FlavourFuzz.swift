// libFuzzer target: flavour files, which come from the project, the user's data folder and,
// through `nxc verify`, from a downloaded archive.
import NXCFlavours

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFlavour(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    // `Flavour.load` refuses text that is not UTF-8 before parsing.
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else {
        return -1
    }
    // The parser checks the image entries only once `name:` equals the file's base name: name
    // the file after the input's own `name:` so that mutations get that far.
    let file = "fuzz/flavours/\(declaredName(text) ?? "fuzz").yaml"
    do {
        // The registry's names (NXCDeploy's `Registry`, outside this build): the parser's paths
        // are the same for any list.
        _ = try Flavour.parse(text, file: file, names: names)
    } catch {
        _ = "\(error)"
    }
    return 0
}

private let names = FlavourNames(artefactKinds: ["ramdisk", "docker-image", "tarball", "tree", "netroot"],
                                 startMethods: ["qemu", "kexec", "docker", "kadeploy", "nspawn", "pxe"],
                                 kindSettings: ["ramdisk": RamdiskSettings.self, "tarball": TarballSettings.self, "netroot": RamdiskSettings.self],
                                 methodSettings: ["qemu": QemuSettings.self])

/// The value of a top-level `name:` line, if it is a plain word that can be a file name.
private func declaredName(_ text: String) -> String? {
    for line in text.split(separator: "\n") where line.hasPrefix("name:") {
        let value = line.dropFirst("name:".count).trimmingPrefix(while: { $0 == " " })
        guard !value.isEmpty, value.count <= 64,
              value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return nil }
        return String(value)
    }
    return nil
}

private extension Substring {
    func trimmingPrefix(while predicate: (Character) -> Bool) -> Substring {
        self[(firstIndex(where: { !predicate($0) }) ?? endIndex)...]
    }
}
