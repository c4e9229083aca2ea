/// The systemd generator (`nxc-generator NORMAL_DIR EARLY_DIR LATE_DIR`).
///
/// One image holds the services of every role, and packages enable their
/// services on installation. Before any unit starts, this masks (links to
/// /dev/null in EARLY_DIR, which wins over /etc) every service of the other
/// roles, so a node runs only its own role's services. If it cannot tell
/// which node it is, it masks every role's services; `nxc-agent boot` then
/// saves the deployment and reloads systemd, which runs this again.
/// It never touches the network (it runs before there is one): with
/// `nxc.deployment_url=` it masks every role's services until `boot` has
/// fetched the document and saved it as /run/nxc/deployment.json.
///
/// It runs before anything else and must never fail the boot: every
/// problem is logged to /dev/kmsg and it exits 0.
enum Generator {
    static let program = "nxc-generator"

    static func run(arguments: [String], root: SystemRoot) -> Int32 {
        let log = Logger(program: program, sink: .kernelLog(path: root.path("/dev/kmsg")))
        // systemd passes three directories; a single one (as when testing by hand) serves for all.
        guard arguments.count == 3 || arguments.count == 1 else {
            log.error("expected NORMAL_DIR EARLY_DIR LATE_DIR, got \(arguments.count) arguments; nothing masked")
            return 0
        }
        let normalDirectory = arguments[0]
        let earlyDirectory = arguments.count == 3 ? arguments[1] : arguments[0]

        let context = BootContext(root: root, log: log)
        let composition: CompositionRoles
        do {
            composition = try context.composition()
        } catch {
            log.error("\(error); nothing masked")
            return 0
        }

        let role = ownRole(context: context, log: log)
        let units = role.map { composition.unitsForeign(to: $0) } ?? composition.allUnits
        if let role, composition.services[role] == nil {
            log.warning("role \(role) is not in \(CompositionRoles.path); masking every role's services")
        }

        do {
            try Files.makeDirectories(earlyDirectory)
        } catch {
            log.error("\(error); nothing masked")
            return 0
        }
        var masked: [String] = []
        for unit in units {
            do {
                try Files.symlink(earlyDirectory + "/" + unit, to: "/dev/null")
                masked.append(unit)
            } catch {
                log.error("cannot mask \(unit): \(error)")
            }
        }
        let who = role.map { "role \($0)" } ?? "unknown node"
        log.info("\(who): masked \(masked.isEmpty ? "nothing" : masked.joined(separator: " "))")
        if let role {
            let ordered = orderAfterAgent(composition.services[role] ?? [], in: normalDirectory, log: log)
            if !ordered.isEmpty { log.info("role \(role): \(ordered.joined(separator: " ")) start after nxc-agent") }
        }
        return 0
    }

    static let agentUnit = "nxc-agent.service"
    static let orderingDropIn = "50-nxc-after-agent.conf"

    /// The role's own services start once the agent has put the role's files in place, so they read
    /// them at their first start and need no restart (a restart that lands while a service is still
    /// starting can leave it stuck: mariadb stayed `deactivating` for good). Only `.service` units,
    /// and not systemd's own early-boot ones, whose ordering before basic.target the agent is after.
    static func orderAfterAgent(_ units: [String], in directory: String, log: Logger) -> [String] {
        var ordered: [String] = []
        for unit in units where unit.hasSuffix(".service") && !unit.hasPrefix("systemd-") && unit != agentUnit {
            let folder = directory + "/" + unit + ".d"
            do {
                try Files.makeDirectories(folder)
                try Files.write(folder + "/" + orderingDropIn,
                                text: "# nxc-generator: the role's files are in place before this starts.\n[Unit]\nAfter=\(agentUnit)\n")
                ordered.append(unit)
            } catch {
                log.error("cannot order \(unit) after the agent: \(error)")
            }
        }
        return ordered
    }

    /// This node's role, or nil (logged) if the node or the deployment is unknown.
    private static func ownRole(context: BootContext, log: Logger) -> String? {
        guard let (name, _) = context.nodeName(option: nil) else {
            log.warning("\(AgentError.noNodeName); masking every role's services")
            return nil
        }
        do {
            return try context.deployment(option: nil).node(name).role
        } catch {
            log.warning("\(error); masking every role's services")
            return nil
        }
    }
}
