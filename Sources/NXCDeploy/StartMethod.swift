import Foundation
import NXCComposition
import NXCFlavours

/// Everything a start method needs to bring a deployment up.
public struct StartContext: Sendable {
    public var project: Project
    public var composition: Composition
    public var flavour: Flavour
    public var buildDirectory: String
    public var nodes: [(node: String, role: String)]
    public var identity: SSHIdentity
    public var timeout: Double
    public var progress: @Sendable (String) -> Void

    public init(project: Project, composition: Composition, flavour: Flavour, buildDirectory: String,
                nodes: [(node: String, role: String)], identity: SSHIdentity, timeout: Double,
                progress: @escaping @Sendable (String) -> Void) {
        self.project = project
        self.composition = composition
        self.flavour = flavour
        self.buildDirectory = buildDirectory
        self.nodes = nodes
        self.identity = identity
        self.timeout = timeout
        self.progress = progress
    }

    public var runDirectory: String { project.runDirectory(composition: composition.name, flavour: flavour.name) }
    public var deploymentFile: String { project.deploymentFile(composition: composition.name, flavour: flavour.name) }
}

/// A way to start a flavour's nodes. One folder per method; `StartMethodName.implementation` maps names to them.
public protocol StartMethod: Sendable {
    /// Files written beside the artefacts at build time (e.g. launch scripts a user can run by hand).
    func prepare(buildDirectory: String, composition: Composition, flavour: Flavour) throws -> [String]
    /// Starts every node and returns when all answer, or throws naming those that do not.
    func start(_ context: StartContext) async throws -> (Deployment, RuntimeState)
    /// Stops what `start` started; returns what could not be stopped.
    func stop(_ state: RuntimeState, runDirectory: String) -> [String]
    /// The local argv that runs `command` on `node` (an interactive shell when `command` is empty).
    func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String]
    /// "running", "stopped", … for `status`.
    func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String
}

extension StartMethodName {
    /// The one place that maps a start method's name to its implementation.
    public var implementation: any StartMethod {
        switch self {
        case .qemu: return QemuStart()
        }
    }
}
