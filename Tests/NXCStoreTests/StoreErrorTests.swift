import XCTest
@testable import NXCStore

final class StoreErrorTests: XCTestCase {
    /// A store that cannot be made says where and why in the system's words, not Foundation's codes.
    func testUnwritableStoreNamesThePathAndReason() async throws {
        let dir = NSTemporaryDirectory() + "nxc-storeerr-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8))
        let store = Store(root: dir + "/file/store")
        do {
            _ = try await store.realise(name: "x", hash: "h") { _ in }
            XCTFail("a store under a regular file was made")
        } catch {
            let text = "\(error)"
            XCTAssertEqual(text, "cannot create store entry \(dir)/file: it exists and is not a folder")
            XCTAssertFalse(text.contains("NSCocoaErrorDomain"), text)
        }
    }
}
