import Foundation
import XCTest
import Yams
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCFlavours

/// The Kadeploy environment description: a golden file with hostile kernel parameters, and the
/// YAML read back gives every value exactly as it went in.
final class KadeployEnvironmentTests: XCTestCase {
    func testGoldenAndValuesReadBackVerbatim() throws {
        let text = TarballKind.environment(name: "nxc-webserver", composition: "webserver", flavour: "g5k-image",
                                           tarball: "./webserver.tar.zst", kernel: "/boot/vmlinuz-6.1.0-1-amd64",
                                           initrd: "/boot/initrd.img-6.1.0-1-amd64", kernelParams: Hostile.kernelParams,
                                           author: "O'Brien \"ob\" \\ $(id)", settings: nil)
        try GoldenFile.check(text, named: "hostile.g5k-image.env.yaml")
        let yaml = try XCTUnwrap(try Yams.load(yaml: text) as? [String: Any])
        XCTAssertEqual((yaml["boot"] as? [String: Any])?["kernel_params"] as? String, Hostile.kernelParams.joined(separator: " "))
        XCTAssertEqual(yaml["author"] as? String, "O'Brien \"ob\" \\ $(id)")
        XCTAssertEqual((yaml["image"] as? [String: Any])?["file"] as? String, "./webserver.tar.zst")
    }
}
