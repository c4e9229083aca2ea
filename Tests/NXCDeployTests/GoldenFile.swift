import Foundation
import XCTest
@testable import NXCComposition
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCFlavours
import NXCBuild

/// Golden files of generated artefacts: `NXC_UPDATE_GOLDEN=1 swift test --filter …` rewrites them.
enum GoldenFile {
    static let folder = DeployTests.repo + "/Tests/NXCDeployTests/Golden"

    static func check(_ text: String, named name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = folder + "/" + name
        if ProcessInfo.processInfo.environment["NXC_UPDATE_GOLDEN"] == "1" {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        guard let want = try? String(contentsOfFile: path, encoding: .utf8) else {
            XCTFail("\(path) is missing; run with NXC_UPDATE_GOLDEN=1 to write it", file: file, line: line)
            return
        }
        XCTAssertEqual(text, want, "\(name) differs from its golden file", file: file, line: line)
    }
}

/// Values that are valid but hostile to a shell: each would run a command or change an argument if
/// a generated script let the shell interpret it. The commands create `pwned-*` files in the current
/// folder, so a test can tell whether any ran.
enum Hostile {
    static let kernelParams = [
        "console=ttyS0,115200",
        "nxc.subst=$(touch${IFS}pwned-subst)",
        "nxc.tick=`touch${IFS}pwned-tick`",
        "nxc.single='it'\\''s'",
        "dyndbg=\"file x +p\"",
        "nxc.dq=\"$(touch pwned-dq) y\"",
        "nxc.semi=a;touch${IFS}pwned-semi",
        "nxc.bs=\\$HOME\\n",
        "nxc.glob=*",
    ]

    /// A project folder name with spaces, `$`, a quote, a comma (QEMU's option separator) and a
    /// command substitution.
    static let folderName = "my proj $HOME 'q' a,b $(touch pwned-dir)"

    static func flavour(_ name: String) throws -> Flavour {
        var f = try Flavour.load(path: DeployTests.repo + "/flavours/\(name).yaml")
        f.kernelParams = kernelParams
        return f
    }

    static func webserver() throws -> Composition {
        try Composition.load(path: DeployTests.repo + "/compositions/webserver/composition.yaml")
    }

    /// A fresh scratch folder (no spaces: it also holds the stubs).
    static func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "nxc-h3-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `pwned-*` files anywhere under `dir`: commands that a script should never have run.
    static func pwned(under dir: String) -> [String] {
        let e = FileManager.default.enumerator(atPath: dir)
        var found: [String] = []
        while let p = e?.nextObject() as? String {
            if (p as NSString).lastPathComponent.hasPrefix("pwned") { found.append(p) }
        }
        return found
    }

    /// An executable in `dir` that appends its argv (NUL-separated, one call per line) to `dir/NAME.argv`.
    static func recorder(_ name: String, in dir: String, thenPrint output: String? = nil) throws {
        let log = ShellQuote.quote(dir + "/" + name + ".argv")
        var text = "#!/bin/sh\n{ for a; do printf '%s\\0' \"$a\"; done; printf '\\n'; } >> \(log)\n"
        if let output { text += "printf '%s' \(ShellQuote.quote(output))\n" }
        let path = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
    }

    /// The calls a recorder saw, each as its argv.
    static func calls(_ name: String, in dir: String) -> [[String]] {
        guard let data = FileManager.default.contents(atPath: dir + "/" + name + ".argv") else { return [] }
        return data.split(separator: 10, omittingEmptySubsequences: true).map { call in
            call.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        }
    }
}
