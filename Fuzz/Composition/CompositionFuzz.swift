// libFuzzer target: composition files (`composition.yaml`), which users share and
// which `nxc verify` reads from archives it was given.
import NXCComposition

/// A folder that does not exist, so relative `source:` files fail to read instead of
/// touching this machine's files; absolute ones are still read (the parser allows them).
private let missingFolder = "/nonexistent/nxc-fuzz"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzComposition(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    // `Composition.load` refuses text that is not UTF-8 before parsing: do the same, so that
    // only inputs a user can really make reach the parser.
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else {
        return -1  // not worth keeping in the corpus
    }
    do {
        let composition = try Composition.parse(text, file: "fuzz/composition.yaml", directory: missingFolder,
                                                defaultName: "fuzz")
        // What later stages read first: every host name of every role.
        for role in composition.roles { _ = role.hostNames() }
    } catch {
        _ = "\(error)"  // messages are built from the input too
    }
    return 0
}
