import ArgumentParser
import Foundation
import NXCDeploy
import NXCDeployment

enum DeployViaArgument: String, ExpressibleByArgument, CaseIterable {
    case inline, http
}

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bind roles to hosts and start the nodes; returns when all answer SSH.")

    @OptionGroup var options: ProjectOptions

    @Option(name: .customShort("r"), help: "Role distribution override, ROLE=N (repeatable).")
    var roles: [String] = []

    @Option(name: .customShort("i"), help: "SSH key (private or .pub) to install for root on the nodes.")
    var identity: String?

    @Option(help: "Seconds to wait for every node (default: the flavour's boot_timeout).")
    var timeout: Double?

    @Option(name: .customShort("m"), help: StartHelp.hosts("Machine file of reserved hosts (default: $OAR_NODEFILE)"))
    var machines: String?

    @Option(name: .customShort("l"), help: "User on the reserved hosts (default: from the machine file, else SSH's).")
    var sshUser: String?

    @Option(name: .customLong("ssh-option"), help: "Extra ssh -o option for the reserved hosts (repeatable).")
    var sshOptions: [String] = []

    @Option(help: "Hosts handled at once.")
    var parallel: Int = StartOptions.defaultParallel

    @Option(help: StartHelp.help(.deployVia, "How the deployment document reaches the nodes, inline or http"))
    var deployVia: DeployViaArgument?

    @Option(help: "Address the hosts reach this machine's HTTP server at (default: the address their SSH sees).")
    var httpAddress: String?

    @Option(help: "Address the HTTP server listens on (default: --http-address).")
    var httpListen: String?

    @Option(help: "Port of the HTTP server (default: an ephemeral one).")
    var httpPort: Int?

    @Flag(help: StartHelp.help(.reuse, "The hosts already run this composition"))
    var reuse = false

    @Flag(help: StartHelp.help(.dryRun, "Check a reservation without starting anything"))
    var dryRun = false

    @Option(help: StartHelp.help(.kadeploy, "The Kadeploy client program"))
    var kadeploy: String?

    @Option(help: StartHelp.help(.distribution, "A folder the hosts mount at the same path as this machine (an NFS home), to place the bundle in"))
    var sharedDir: String?

    @Flag(help: "Push the bundle to each host over SSH instead of the relay chain (see --shared-dir).")
    var noRelay = false

    @Option(help: StartHelp.help(.retries, "How often each phase on a reserved host is tried again"))
    var retries: Int = StartOptions.defaultRetries

    @Flag(help: StartHelp.help(.resume, "Finish the last start: redo the nodes that are not up"))
    var resume = false

    @Option(help: StartHelp.help(.store, "The host that serves the system over NFS (nfs-store)"))
    var storeHost: String?

    @Option(help: StartHelp.help(.store, "A folder the nodes mount over NFS themselves (nfs-store): the system goes there as an image"))
    var storeDir: String?

    @Option(help: StartHelp.help(.store, "Where the nodes mount --store-dir (nfs://SERVER/PATH), when this machine's mount table does not say"))
    var storeURL: String?

    @Flag(help: StartHelp.help(.install, "Install the composition's disk system (its g5k-image build) on each machine's disk, then boot it from there"))
    var install = false

    @Option(help: StartHelp.help(.install, "The disk --install writes (default: the machine's first fixed disk)"))
    var installDisk: String?

    @Argument(help: "Composition file or folder (default: ./composition.yaml), or a role distribution file.")
    var composition: String?

    func validate() throws {
        if parallel < 1 { throw ValidationError("--parallel must be at least 1") }
        if let t = timeout, t <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() async throws {
        try await reportingErrors {
            let doc = try await Operations.start(project: options.project, composition: composition,
                                                 flavour: try options.flavourName(), roles: roles,
                                                 identityFile: identity, timeout: timeout, options: startOptions,
                                                 progress: Progress.printer())
            if dryRun {
                print("dry run: \(doc.order.count) host(s) checked and ready; nothing was kexec'd")
                return
            }
            print("\(doc.composition) (\(doc.flavour)) is up: \(doc.order.count) node(s)")
            for n in doc.order {
                guard let node = doc.nodes[n] else { continue }
                print("  \(n)\t\(node.role)\t\(node.address ?? "-")\t" + (node.ssh.map { "ssh -p \($0.port) \($0.user)@\($0.host)" } ?? ""))
            }
        }
    }
}

extension Start {
    var startOptions: StartOptions {
        var o = StartOptions()
        o.machineFile = machines
        o.sshUser = sshUser
        o.sshOptions = sshOptions
        o.parallel = parallel
        o.deployVia = deployVia.flatMap { DeployVia(rawValue: $0.rawValue) }
        o.reuse = reuse
        o.dryRun = dryRun
        o.httpAddress = httpAddress
        o.httpListen = httpListen
        o.httpPort = httpPort
        if let kadeploy { o.kadeployCommand = kadeploy }
        o.relay = !noRelay
        o.retries = retries
        o.resume = resume
        o.storeHost = storeHost
        o.storeDir = storeDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        o.storeURL = storeURL
        o.install = install
        o.installDisk = installDisk
        o.sharedDir = sharedDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        return o
    }
}
