import Foundation
import NXCDeployment
import NXCComposition
import NXCFlavours

/// The QEMU launch scripts written beside a ramdisk's kernel and initrd. `start` runs the same
/// `launch.sh` that a user can run by hand, so what is tested is what users get.
enum LaunchScript {
    /// Node numbers start at 1; MACs and the private address derive from it.
    static func privateMAC(_ index: Int) -> String { String(format: "52:54:00:77:%02x:%02x", index / 256, index % 256) }
    static func userMAC(_ index: Int) -> String { String(format: "52:54:00:78:%02x:%02x", index / 256, index % 256) }
    static func privateAddress(_ index: Int) -> String { "10.77.\(index / 256).\(index % 256)" }
    static let prefixLength = 16
    /// slirp's guest address; the host's forwards reach the guest there.
    static let userAddress = "10.0.2.15/24"

    static func generic(composition: Composition, flavour: Flavour) -> String {
        // One single-quoted literal: the shell never reads inside it, so `$(…)`, backticks and quotes
        // in a parameter reach the kernel as written.
        let params = ShellQuote.quote(flavour.kernelParams.joined(separator: " "))
        let example = ShellQuote.comment(composition.roles.first?.hostNames().first ?? "node")
        return """
        #!/bin/sh
        # Starts one node of composition '\(ShellQuote.comment(composition.name))' (flavour \(ShellQuote.comment(flavour.name))) as a QEMU VM.
        # Written by `nxc build`; `nxc start` runs this same script. By hand:
        #   NXC_NODE=\(example) ./launch.sh      (or ./launch-NODE.sh)
        # Environment:
        #   NXC_NODE        node name (required)
        #   NXC_INDEX       node number, 1…250: MAC addresses (default 1)
        #   NXC_DEPLOYMENT  deployment document (default: deployment.json beside this script)
        #   NXC_SSH_PORT    port on 127.0.0.1 forwarded to the node's SSH (default 10021+NXC_INDEX)
        #   NXC_SWITCH      vde_switch socket of the private network (default: none)
        #   NXC_MEMORY      memory in MiB (default \(flavour.settings(as: QemuSettings.self).memory))
        #   NXC_GUESTFWD    extra user-mode forward from the guest to this machine, e.g.
        #                   'tcp:10.0.2.100:8080-cmd:nc 127.0.0.1 8080' (default: none)
        #   NXC_ACCEL       QEMU accelerator (default: tcg,tb-size=128; e.g. kvm where it works).
        #                   A 128 MiB translation cache is flushed often enough that a guest which
        #                   kexecs does not crawl through the stale translations of the system it
        #                   replaces (measured: initrd unpack after kexec 27 s with the default
        #                   1 GiB cache, 4 s with 128 MiB).
        #   NXC_CONSOLE     serial console log file; with it QEMU goes to the background and
        #                   writes its PID to NXC_PIDFILE (default: NXC_CONSOLE.pid).
        #                   Without it the console is this terminal (Ctrl-a x quits).
        set -eu
        here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
        : "${NXC_NODE:?set NXC_NODE to the node name}"
        # These go into arithmetic and QEMU options: digits only.
        number() {
          case $2 in
            ''|*[!0-9]*) printf 'launch.sh: %s must be a number, not %s\\n' "$1" "$2" >&2; exit 2 ;;
          esac
        }
        # A ',' inside a QEMU option value is written ',,', or QEMU would read the rest as more options.
        commas() {
          rest=$1 out=
          while :; do
            case $rest in
              *,*) out="$out${rest%%,*},,"; rest=${rest#*,} ;;
              *) printf '%s\\n' "$out$rest"; return ;;
            esac
          done
        }
        index=${NXC_INDEX:-1}; number NXC_INDEX "$index"
        deployment=${NXC_DEPLOYMENT:-$here/deployment.json}
        port=${NXC_SSH_PORT:-$((10021 + index))}; number NXC_SSH_PORT "$port"
        mem=${NXC_MEMORY:-\(flavour.settings(as: QemuSettings.self).memory)}; number NXC_MEMORY "$mem"
        hi=$(printf %02x $((index / 256))); lo=$(printf %02x $((index % 256)))
        params=\(params)
        append="$params nxc.host=$NXC_NODE nxc.deployment=$(base64 -w0 "$deployment")"
        set -- -name "nxc-$(commas "$NXC_NODE")" -machine pc -accel "${NXC_ACCEL:-tcg,tb-size=128}" -cpu max -smp 1 -m "$mem" -no-reboot -nodefaults \\
          -kernel "$here/kernel" -initrd "$here/initrd" -append "$append" \\
          -netdev "user,id=user,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22${NXC_GUESTFWD:+,guestfwd=$NXC_GUESTFWD}" \\
          -device "virtio-net-pci,netdev=user,mac=52:54:00:78:$hi:$lo" \\
          -device virtio-rng-pci
        if [ -n "${NXC_SWITCH:-}" ]; then
          set -- "$@" -netdev "vde,id=private,sock=$(commas "$NXC_SWITCH")" -device "virtio-net-pci,netdev=private,mac=52:54:00:77:$hi:$lo"
        fi
        if [ -n "${NXC_CONSOLE:-}" ]; then
          set -- "$@" -display none -serial "file:$NXC_CONSOLE" -daemonize -pidfile "${NXC_PIDFILE:-$NXC_CONSOLE.pid}"
        else
          set -- "$@" -nographic -serial mon:stdio
        fi
        exec qemu-system-x86_64 "$@"

        """
    }

    static func perNode(node: String, index: Int, memory: Int) -> String {
        """
        #!/bin/sh
        # Starts node '\(ShellQuote.comment(node))' alone (see launch.sh for the environment it reads).
        here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
        NXC_NODE=\(ShellQuote.quote(node)) NXC_INDEX=${NXC_INDEX:-\(index)} NXC_MEMORY=${NXC_MEMORY:-\(memory)} exec "$here/launch.sh"

        """
    }
}
