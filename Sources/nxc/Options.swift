import ArgumentParser
import Foundation
import NXCDeploy
import NXCDeployment
import NXCStore
import NXCFlavours

/// Options shared by commands that act on a project's composition.
struct ProjectOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .long], help: "Flavour (see `nxc flavours`).")
    var flavour: String?

    @Option(name: .customLong("project"), help: "Project folder (default: the current folder).")
    var projectDirectory: String?

    /// The flavour asked for, or the one whose file says `default: true` (the bundled files make it
    /// vm-ramdisk, the flavour a laptop user iterates with; a project's `flavours/` may choose another).
    func flavourName() throws -> String { try flavour ?? Flavour.defaultName(project: project.directory) }

    var project: Project { Project.at(projectDirectory) }
}

/// `--project`, `--store` and the composition argument of the commands that take several flavours
/// (lock, export).
struct BuildScope: ParsableArguments {
    @Option(name: .customLong("project"), help: "Project folder (default: the current folder).")
    var projectDirectory: String?

    @Option(help: "Store folder (default: $NXC_STORE, $XDG_CACHE_HOME/nxc or ~/.cache/nxc).")
    var store: String?

    @Argument(help: "Composition file or folder (default: ./composition.yaml).")
    var composition: String?

    var project: Project { Project.at(projectDirectory) }
    var storeRoot: Store { Store(root: store ?? Store.defaultRoot()) }
}

extension Project {
    /// The project folder given with --project, or the current folder.
    static func at(_ directory: String?) -> Project {
        Project(directory: directory.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? FileManager.default.currentDirectoryPath)
    }
}

/// Prints progress lines with the time since the command started.
struct Progress {
    static func printer() -> @Sendable (String) -> Void {
        let start = Date()
        return { line in
            let t = Date().timeIntervalSince(start)
            FileHandle.standardError.write(Data(String(format: "[%6.1fs] %@\n", t, line).utf8))
        }
    }
}

/// Turns any error into a message on stderr and a non-zero exit, never a crash.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let e as ExitCode {
        throw e
    } catch let e as CleanExit {
        throw e
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        throw ExitCode(1)
    }
}
