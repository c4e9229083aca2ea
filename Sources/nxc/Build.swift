import ArgumentParser
import Foundation
import NXCComposition
import NXCDeploy
import NXCDeployment
import NXCPipeline
import NXCStore

struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Build a flavour's artefacts into build/<composition>/<flavour>/.")

    @OptionGroup var options: ProjectOptions

    @Option(help: "Debian mirror (default: the composition's, else the one the host's apt uses).")
    var mirror: String?

    @Option(help: "Store folder (default: $NXC_STORE, $XDG_CACHE_HOME/nxc or ~/.cache/nxc).")
    var store: String?

    @Flag(help: "Install exactly the packages composition.lock gives this flavour; fail instead of adding any.")
    var frozen = false

    @Argument(help: "Composition file or folder (default: ./composition.yaml).")
    var composition: String?

    func validate() throws { try validateMirror(mirror) }

    func run() async throws {
        try await reportingErrors {
            let store = Store(root: self.store ?? Store.defaultRoot())
            let r = try await BuildPipeline.build(project: options.project, composition: composition,
                                                  flavour: try options.flavourName(), mirror: mirror,
                                                  lockMode: frozen ? .frozen : .follow,
                                                  store: store, progress: Progress.printer())
            print("built \(r.composition.name) for \(r.flavour.name) in \(String(format: "%.1f", r.seconds)) s: \(r.directory)")
            for a in r.artefacts {
                print(String(format: "  %-10@ %10@  sha256:%@", a.name, formatSize(a.size), String(a.sha256.prefix(16))))
            }
            if !r.generated.isEmpty {
                // One line: a composition of many nodes has a launch script each (manifest.json lists them all).
                let names = r.generated.map(\.name)
                let shown = names.count > 6 ? names.prefix(5).joined(separator: ", ") + ", … (\(names.count) in all)" : names.joined(separator: ", ")
                print("  files for nxc start: \(shown)")
            }
            printLockChanges(path: r.lockPath, changes: r.lockChanges, created: r.lockCreated)
        }
    }
}

/// `--mirror` goes to mmdebstrap as its mirror argument: one URL by the rule every mirror follows
/// (a value such as `deb [trusted=yes] …` would be read as a whole sources.list line).
func validateMirror(_ mirror: String?) throws {
    guard let mirror else { return }
    do { try DebianSource.validateMirror(mirror) } catch { throw ValidationError("--mirror: \(error.message)") }
}

/// Tells what a build or `nxc lock` changed in the lock file.
func printLockChanges(path: String, changes: [String], created: Bool) {
    let name = relativeToCurrentDirectory(path)
    if created {
        print("wrote \(name): \(changes.filter { $0.hasPrefix("+ ") && !$0.hasPrefix("+ flavour") }.count) packages (keep it with the composition)")
    } else if !changes.isEmpty {
        print("updated \(name):")
        for c in changes.prefix(20) { print("  " + c) }
        if changes.count > 20 { print("  … and \(changes.count - 20) more (`git diff \(name)` shows them all)") }
    }
}

func relativeToCurrentDirectory(_ path: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath + "/"
    return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
}

func formatSize(_ n: Int64) -> String {
    let d = Double(n)
    if n >= 1 << 30 { return String(format: "%.1f GiB", d / 1_073_741_824) }
    if n >= 1 << 20 { return String(format: "%.1f MiB", d / 1_048_576) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", d / 1024) }
    return "\(n) B"
}
