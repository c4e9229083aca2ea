import Glibc

/// Puts the deployment's addresses and routes on this node's interfaces.
/// Interfaces are found by MAC address: names (ens3, eth0, enp0s1) depend on
/// the machine and the kernel, a MAC recorded by the deployer does not.
struct Network {
    let root: SystemRoot
    let system: SystemActions
    let log: Logger

    /// Seconds a command of `ip` may take.
    static let commandTimeout = 10
    static let pollInterval: UInt32 = 100_000

    /// Brings `lo` up unless it already is: in a container without
    /// CAP_NET_ADMIN even a no-op `ip link set` fails.
    func bringLoopbackUp() throws {
        if let flags = Files.readTrimmed(root.path("/sys/class/net/lo/flags")),
           let value = Int(flags.hasPrefix("0x") ? String(flags.dropFirst(2)) : flags, radix: 16),
           value & Int(IFF_UP) != 0 {
            log.info("lo is up")
            return
        }
        try system.run(["ip", "link", "set", "dev", "lo", "up"], timeout: Network.commandTimeout)
    }

    /// Configures each interface; returns one message per failure. All
    /// interfaces share one deadline, `timeout` seconds from now, to appear.
    func configure(_ interfaces: [Deployment.Interface], timeout: Int) -> [String] {
        var failures: [String] = []
        let deadline = Clock.now() + Double(timeout)
        for interface in interfaces {
            guard let name = waitForInterface(mac: interface.mac, until: deadline) else {
                let message = "no network interface with MAC \(interface.mac) appeared within \(timeout) s"
                log.error(message)
                failures.append(message)
                continue
            }
            log.info("interface \(name) has MAC \(interface.mac)")
            var commands = [["ip", "link", "set", "dev", name, "up"]]
            for address in interface.addresses {
                commands.append(["ip", "address", "replace", address, "dev", name])
            }
            for route in interface.routes {
                var command = ["ip", "route", "replace", route.to]
                if let via = route.via { command += ["via", via] }
                commands.append(command + ["dev", name])
            }
            for command in commands {
                do {
                    try system.run(command, timeout: Network.commandTimeout)
                } catch {
                    log.error("\(error)")
                    failures.append("\(error)")
                }
            }
        }
        return failures
    }

    /// Adds routes not tied to an interface (`ip route replace TO via VIA`,
    /// the kernel picks the device); returns one message per failure.
    func addRoutes(_ routes: [Deployment.Route]) -> [String] {
        var failures: [String] = []
        for route in routes {
            var command = ["ip", "route", "replace", route.to]
            if let via = route.via { command += ["via", via] }
            do {
                try system.run(command, timeout: Network.commandTimeout)
            } catch {
                log.error("\(error)")
                failures.append("\(error)")
            }
        }
        return failures
    }

    private func waitForInterface(mac: String, until deadline: Double) -> String? {
        var announced = false
        while true {
            if let name = interface(mac: mac) { return name }
            if Clock.now() >= deadline { return nil }
            if !announced {
                log.info("waiting for an interface with MAC \(mac)")
                announced = true
            }
            usleep(Network.pollInterval)
        }
    }

    /// The interface whose address is `mac`. Bridges, VLANs and bonds copy
    /// the MAC of a device: a physical one (with a `device` link) is preferred.
    func interface(mac: String) -> String? {
        let directory = root.path("/sys/class/net")
        guard let names = try? Files.list(directory) else { return nil }
        let matches = names.filter { name in
            Files.readTrimmed(directory + "/" + name + "/address")?.lowercased() == mac
        }
        return matches.first { Files.exists(directory + "/" + $0 + "/device") } ?? matches.first
    }
}
