import Foundation
import NXCDeployment
import NXCComposition
import NXCFlavours
import NXCTestbed

/// How the deployment document reaches the nodes.
public enum DeployVia: String, Sendable, CaseIterable {
    case inline
    case http
}

/// The options of `nxc start` that only some start methods take. A method lists those it takes
/// (`StartMethod.optionHelp`); `nxc start` refuses the others rather than ignoring them (a dry run
/// that starts VMs, or deploys with Kadeploy, would be worse than an error).
public enum StartFeature: String, Sendable, CaseIterable, Comparable {
    /// `-m FILE`, `$OAR_NODEFILE`, `-l USER`, `--ssh-option`, `--parallel`: reserved hosts.
    case hosts = "-m/--machines"
    case dryRun = "--dry-run"
    case reuse = "--reuse"
    case deployVia = "--deploy-via/--http-address/--http-listen/--http-port"
    case kadeploy = "--kadeploy"
    case distribution = "--shared-dir/--no-relay"
    case retries = "--retries"
    case resume = "--resume"
    case store = "--store-host/--store-dir/--store-url"
    case install = "--install/--install-disk"

    public static func < (a: StartFeature, b: StartFeature) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Options of `nxc start` that only some start methods use (testbed hosts, SSH, HTTP).
public struct StartOptions: Sendable {
    public var machineFile: String?
    public var sshUser: String?
    public var sshOptions: [String] = []
    public static let defaultParallel = 32
    public var parallel: Int = defaultParallel
    public var deployVia: DeployVia?
    public var reuse = false
    public var dryRun = false
    /// Address the hosts reach nxc's HTTP server at (default: the one they see our SSH coming from).
    public var httpAddress: String?
    /// Address to listen on (default: httpAddress).
    public var httpListen: String?
    public var httpPort: Int?
    /// The Kadeploy client (g5k-image).
    public static let defaultKadeployCommand = "kadeploy3"
    public var kadeployCommand = defaultKadeployCommand
    /// A folder the hosts mount at the same path as this machine, to place the bundle in (kexec).
    public var sharedDir: String?
    /// Hosts that lack the same files pass them on to each other (kexec); off: each gets them over SSH.
    public var relay = true
    /// How often each phase on a reserved host is tried again (connect, transfer, kexec).
    public static let defaultRetries = RetryPolicy.defaultRetries
    public var retries = defaultRetries
    /// Redo only the nodes the last start's report does not give as up, with the document the others hold.
    public var resume = false
    /// The host of the reservation that serves a netroot build's system tree over NFS (nfs-store).
    public var storeHost: String?
    /// Or a folder the nodes mount over NFS by themselves (a Grid'5000 home): the system goes there as an image.
    public var storeDir: String?
    /// Where the nodes mount --store-dir (`nfs://SERVER/PATH`), when this machine's mount table does not say.
    public var storeURL: String?
    /// Write the composition's disk system (its g5k-image build) to each machine's disk, then boot it from there (pxe).
    public var install = false
    /// The disk to install on (`vda`, `/dev/nvme0n1`); default: the machine's first fixed disk.
    public var installDisk: String?

    public init() {}

    /// The options given that not every start method takes (a machine file from $OAR_NODEFILE
    /// alone is not one: it is set in every job of a reservation).
    public var requestedFeatures: Set<StartFeature> {
        var f = Set<StartFeature>()
        if machineFile != nil || sshUser != nil || !sshOptions.isEmpty || parallel != Self.defaultParallel { f.insert(.hosts) }
        if dryRun { f.insert(.dryRun) }
        if reuse { f.insert(.reuse) }
        if deployVia != nil || httpAddress != nil || httpListen != nil || httpPort != nil { f.insert(.deployVia) }
        if kadeployCommand != Self.defaultKadeployCommand { f.insert(.kadeploy) }
        if sharedDir != nil || !relay { f.insert(.distribution) }
        if retries != Self.defaultRetries { f.insert(.retries) }
        if resume { f.insert(.resume) }
        if storeHost != nil || storeDir != nil || storeURL != nil { f.insert(.store) }
        if install || installDisk != nil { f.insert(.install) }
        return f
    }
}

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
    public var options: StartOptions
    /// Nodes bound to reserved hosts, for methods that deploy onto hosts.
    public var binding: HostBinding?

    public init(project: Project, composition: Composition, flavour: Flavour, buildDirectory: String,
                nodes: [(node: String, role: String)], identity: SSHIdentity, timeout: Double,
                options: StartOptions = StartOptions(), binding: HostBinding? = nil,
                progress: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.binding = binding
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
    public var reportFile: String { project.reportFile(composition: composition.name, flavour: flavour.name) }
}

/// A way to start a flavour's nodes. One folder per method; `Registry` lists them, and a flavour
/// file names one (`start:`).
public protocol StartMethod: Sendable {
    /// What a flavour file's `start:` says to get this method; also what a deployment's state
    /// records (`RuntimeState.startMethod`), so that exec, status and stop find it again.
    var name: String { get }
    /// Whether nodes go onto reserved hosts (`-m FILE`), or are created here.
    var bindsHosts: Bool { get }
    /// Where the nodes run, in a few words (an export's README: "VMs on this machine").
    var summary: String { get }
    /// What it reads from the flavour file under its own keys (`flavour.settings(as:)` gives it back);
    /// `NoSettings` by default.
    var settingsType: any FlavourSettings.Type { get }
    /// Whether `start` sends the deployment's secret itself (`NodeSecret.install`), because its
    /// readiness includes role services that may wait for the secret; otherwise `nxc start` sends
    /// it once `start` returns.
    var deliversSecret: Bool { get }
    /// The options of `nxc start` that only some methods take and this one does, each with what it
    /// does here (a phrase `nxc start --help` shows beside the flavours of this method). `.hosts`
    /// follows from `bindsHosts`: see `takes`.
    var optionHelp: [StartFeature: String] { get }
    /// Options this method takes only for builds of some artefact kinds (kexec: --store-host for
    /// netroot builds); the others it takes for every flavour that uses it.
    var featureKinds: [StartFeature: [String]] { get }
    /// Refuses options this method cannot use as given (a program that is not there, a port out of
    /// range, options that contradict each other), before anything is bound, written or started.
    func check(_ options: StartOptions) throws
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

extension StartMethod {
    public var deliversSecret: Bool { false }
    public var settingsType: any FlavourSettings.Type { NoSettings.self }
    public var optionHelp: [StartFeature: String] { [:] }
    public var featureKinds: [StartFeature: [String]] { [:] }
    public func check(_ options: StartOptions) throws {}
    /// Every option this method takes: those it explains, and the reserved-host options when it binds hosts.
    public var takes: Set<StartFeature> { Set(optionHelp.keys).union(bindsHosts ? [.hosts] : []) }
    /// The options a flavour of this method takes, given its artefact kind.
    public func takes(artefact: String) -> Set<StartFeature> {
        takes.filter { featureKinds[$0].map { $0.contains(artefact) } ?? true }
    }
}
