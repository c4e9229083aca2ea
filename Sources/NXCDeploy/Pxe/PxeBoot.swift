import Foundation
import NXCDeployment
import NXCComposition
import NXCFlavours

/// What a machine that boots from the network is given: the iPXE scripts, and the pixiecore API
/// documents (`v1/boot/<mac>` → `{"kernel", "initrd", "cmdline", "message"}`), as text and as a
/// folder a site's own HTTP server (or pixiecore in API mode) can serve as it is.
enum PxeBoot {
    /// Written at build time beside the kernel and initrd. A DHCP server's boot file for iPXE
    /// clients points at it on nxc's HTTP server; each machine then chains to its node's script,
    /// named by its MAC address, relative to this one (iPXE resolves it against the script's URL).
    static let genericScript = """
        #!ipxe
        # nxc (pxe): point the DHCP server's boot file for iPXE clients at this script's URL on the
        # server `nxc start -f pxe` runs (it prints the URL). Each machine chains to its own node's
        # script, named by its MAC address; a machine that is not a node boots from its next device.
        chain --autofree nodes/${netX/mac:hexhyp}.ipxe || goto notanode
        :notanode
        echo nxc: ${netX/mac} is not a node of this deployment (or nxc's server is not running)
        echo nxc: booting from the next device in 10 s
        sleep 10
        exit 1

        """

    /// The words iPXE fills in at boot: the address, netmask and gateway DHCP gave the interface it
    /// booted from, so that the agent sets them before it fetches the document (the image has no
    /// DHCP client). pixiecore writes the cmdline into its own iPXE script, where they work too.
    static let networkWords = ["nxc.if=${netX/mac},${netX/ip}/${netX/netmask}", "nxc.route=default,${netX/gateway}"]

    /// The node's kernel command line: the flavour's parameters, who it is, where its document is
    /// and its SHA-256 (plain HTTP), and its network as DHCP gave it.
    /// `root`: `nxc.root=nfs://…` for a netroot build's initrd (pxe-nfs-store).
    /// `extra`: the installer's words (`--install`).
    static func commandLine(flavour: Flavour, node: String, documentURL: String, sha256: String, root: String? = nil,
                            extra: [String] = []) -> String {
        (flavour.kernelParams + ["initrd=initrd", "nxc.host=\(node)", "nxc.deployment_url=\(documentURL)?node=\(node)",
                                 "nxc.deployment_sha256=\(sha256)"] + networkWords + (root.map { [$0] } ?? []) + extra).joined(separator: " ")
    }

    /// `nicSegments`: a netroot build: the initrd without NIC drivers, then the machine's own NIC
    /// segment by its PCI IDs (every NIC driver if nxc's server does not know them).
    static func nodeScript(node: String, role: String, composition: String, base: String, cmdline: String, nicSegments: Bool = false) -> String {
        guard nicSegments else {
            return """
                #!ipxe
                echo nxc: booting ${netX/mac} as \(node) (role \(role) of \(composition))
                kernel \(base)/kernel \(cmdline)
                initrd --name initrd \(base)/initrd
                boot

                """
        }
        return """
            #!ipxe
            echo nxc: booting ${netX/mac} as \(node) (role \(role) of \(composition))
            kernel \(base)/kernel \(cmdline) initrd=nic
            initrd --name initrd \(base)/initrd.base
            initrd --name nic \(base)/nic/${netX/busid:hexhyp} || initrd --name nic \(base)/nic/all
            boot

            """
    }

    /// pixiecore's API answer for one machine.
    static func pixiecoreDocument(node: String, role: String, composition: String, base: String, cmdline: String) throws -> Data {
        // pixiecore adds its own initrd=… words; the node needs no other.
        let words = cmdline.split(separator: " ").filter { $0 != "initrd=initrd" }.joined(separator: " ")
        let doc: [String: Any] = ["kernel": "\(base)/kernel", "initrd": ["\(base)/initrd"], "cmdline": words,
                                  "message": "nxc: \(node) (role \(role) of \(composition))"]
        return try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }

    /// `52:54:00:12:34:56` → `52-54-00-12-34-56` (iPXE's `:hexhyp`).
    static func hyphenated(_ mac: String) -> String { mac.replacingOccurrences(of: ":", with: "-") }
}
