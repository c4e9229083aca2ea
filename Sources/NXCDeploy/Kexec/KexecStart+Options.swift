import Foundation
import NXCDeployment
import NXCComposition
import NXCFlavours

/// The options of `nxc start` that kexec takes, checked before hosts are bound, and how the
/// deployment document reaches the nodes.
extension KexecStart {
    var optionHelp: [StartFeature: String] {
        [.dryRun: "connect, check the hosts and push the bundle, but do not kexec",
         .reuse: "connect as root with nxc's key and kexec again",
         .deployVia: "by default inline on the kernel command line while it fits, else from nxc's HTTP server",
         .retries: "connect, transfer and kexec, waiting 2 s, 4 s, … (30 s at most) in between; a host that still fails gives its node to a spare (a host of the machine file beyond the nodes)",
         .resume: "redoes only the nodes the last start's report (deploy/<c>.<f>.report.json) does not give as up and that do not answer as themselves, on the same hosts, with the document the others hold; hosts of the machine file the last start did not use are spares; with --dry-run, resumes a dry run: redoes the hosts that do not hold the whole bundle",
         .store: "--store-host: a host of the reservation (not a node; left out of the machine file) that runs the kernel NFS server: nxc gives it the system tree once, under /srv/nxc/store, and exports it read-only to the nodes' subnet; or --store-dir: a folder the nodes mount over NFS themselves (on Grid'5000, one under your home): nxc writes the system there as one squashfs image and runs no server; the nodes' URL for it comes from this machine's mount table, or --store-url nfs://SERVER/PATH",
         .distribution: "the hosts copy the bundle from a folder they share with this machine (--shared-dir; without it, the build folder at its own path), else pass it on to each other in a chain fed once from here (--no-relay: each host gets it over SSH)"]
    }

    var featureKinds: [StartFeature: [String]] { [.store: [NetrootKind().name]] }

    func check(_ options: StartOptions) throws {
        if let d = options.sharedDir {
            var isDir: ObjCBool = false
            guard d.hasPrefix("/"), FileManager.default.fileExists(atPath: d, isDirectory: &isDir), isDir.boolValue else {
                throw DeployError.badOption("--shared-dir", problem: "'\(FlavourRules.printable(d))' is not an absolute path of a folder here; the hosts must see it at the same path")
            }
        }
        if let p = options.httpPort, !(1...65535).contains(p) {
            throw DeployError.badOption("--http-port", problem: "\(p) is not a TCP port (1-65535); leave it out for an ephemeral one")
        }
        // The hosts fetch from --http-address (a name or an address); nxc listens on --http-listen,
        // else on that address, which must then be one of this machine's IPv4 addresses.
        if let a = options.httpAddress, !isIPv4(a), !isHostname(a) {
            throw DeployError.badOption("--http-address", problem: "'\(FlavourRules.printable(a))' is neither an IPv4 address nor a host name")
        }
        if let l = options.httpListen ?? options.httpAddress, !isIPv4(l) {
            throw DeployError.badOption(options.httpListen == nil ? "--http-address" : "--http-listen",
                                        problem: "nxc's HTTP server listens on an IPv4 address; '\(FlavourRules.printable(l))' is not one"
                                            + (options.httpListen == nil ? " (give --http-listen ADDRESS)" : ""))
        }
        if options.resume && options.reuse {
            throw DeployError.badOption("--resume", problem: "continues the last start on the same hosts; it does not go with --reuse")
        }
        if let s = options.storeHost {
            do {
                guard try HostList.parse(s, file: "--store-host").count == 1 else { throw DeployError.badOption("--store-host", problem: "expected one host") }
            } catch {
                throw DeployError.badOption("--store-host", problem: "'\(FlavourRules.printable(s))' is not a host ([USER@]HOST[:PORT])")
            }
        }
        try Self.checkStore(options)
        if !(0...10).contains(options.retries) {
            throw DeployError.badOption("--retries", problem: "\(options.retries) is not between 0 and 10")
        }
        if options.deployVia == .inline, options.httpAddress != nil || options.httpListen != nil || options.httpPort != nil {
            throw DeployError.badOption("--deploy-via inline", problem: "--http-address, --http-listen and --http-port set up the HTTP server, which inline does not start")
        }
    }
    /// --store-url goes with --store-dir, which goes without --store-host.
    static func checkStore(_ options: StartOptions) throws {
        if options.storeURL != nil && options.storeDir == nil {
            throw DeployError.badOption("--store-url", problem: "says where the nodes mount --store-dir; give --store-dir DIR too")
        }
        if options.storeHost != nil && options.storeDir != nil {
            throw DeployError.badOption("--store-dir", problem: "goes without --store-host: the nodes mount the system from one or the other")
        }
        if let u = options.storeURL { _ = try StoreFolder.checkedURL(u, option: "--store-url") }
    }

    private func isIPv4(_ s: String) -> Bool {
        var a = in_addr()
        return inet_pton(AF_INET, s, &a) == 1
    }

    /// Inline while the command line fits, HTTP otherwise; says which and why (never silently).
    static func chooseVia(forced: DeployVia?, inlineSize: Int) throws -> (DeployVia, String) {
        let fits = inlineSize < commandLineLimit
        switch (forced, fits) {
        case (.inline?, false):
            throw DeployError.tooLarge("--deploy-via inline: the kernel command line", size: inlineSize, limit: commandLineLimit,
                                       hint: "leave --deploy-via out, or give http")
        case (.inline?, true), (nil, true):
            return (.inline, "inline on the kernel command line (\(inlineSize) of \(commandLineLimit) bytes)")
        case (.http?, _):
            return (.http, "over HTTP (--deploy-via http)")
        case (nil, false):
            return (.http, "over HTTP: \(inlineSize) bytes do not fit on the kernel command line (\(commandLineLimit))")
        }
    }
}
