// libFuzzer target: `composition.lock`, shipped with a composition and read by
// `nxc build --frozen` and `nxc verify` (from archives it was given).
import NXCBuild

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLock(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    // `LockFile.load` refuses text that is not UTF-8 before parsing.
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else {
        return -1
    }
    do {
        let lock = try LockFile.parse(text, file: "fuzz/composition.lock")
        // A lock that parses is used: pins are written from it and compared with the last one.
        _ = lock.aptPreferences()
        _ = lock.changes(from: nil)
        _ = lock.render(composition: "fuzz")
    } catch {
        _ = "\(error)"
    }
    return 0
}
