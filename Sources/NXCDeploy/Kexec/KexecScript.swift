import NXCDeployment
import NXCComposition
import NXCFlavours

/// The script of a kexec bundle. `nxc start` runs it on every host; a user can run it by hand.
enum KexecScript {
    static func text(composition: Composition, flavour: Flavour) -> String {
        // One single-quoted literal: the shell never reads inside it, so `$(…)`, backticks and quotes
        // in a parameter reach the kernel as written.
        let params = ShellQuote.quote(flavour.kernelParams.joined(separator: " "))
        return """
        #!/bin/sh
        # Boots this bundle of composition '\(ShellQuote.comment(composition.name))' (flavour \(ShellQuote.comment(flavour.name))) on the machine that
        # runs it, with kexec: no reboot through the firmware. Written by `nxc build`; `nxc start` runs it
        # on every reserved host. By hand, as root, with kernel, initrd and this script in one folder:
        #   ./kexec.sh NODE DEPLOYMENT.json
        #   NXC_DEPLOYMENT_URL=http://ADDRESS:PORT/deployment.json NXC_NET='nxc.if=MAC,ADDR/PREFIX' ./kexec.sh NODE
        # NXC_NET: words for the kernel command line (the node's network; nxc.root=URL for nfs-store).
        # NXC_KEXEC_DELAY: seconds between loading and executing the kernel (default 1), so that the
        # SSH session that started this script returns before the machine changes kernels.
        set -eu
        here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
        PATH=$PATH:/usr/sbin:/sbin
        node=${1:?usage: kexec.sh NODE [DEPLOYMENT.json]}
        delay=${NXC_KEXEC_DELAY:-1}
        case $delay in
          ''|*[!0-9]*) printf 'kexec.sh: NXC_KEXEC_DELAY must be a whole number of seconds, not %s\\n' "$delay" >&2; exit 2 ;;
        esac
        params=\(params)
        if [ -n "${NXC_DEPLOYMENT_URL:-}" ]; then
          deployment="nxc.deployment_url=$NXC_DEPLOYMENT_URL ${NXC_NET:-}"
        else
          deployment="nxc.deployment=$(base64 -w0 "${2:?give the deployment document}")${NXC_NET:+ $NXC_NET}"
        fi
        kexec -l "$here/kernel" --initrd="$here/initrd" --command-line="$params nxc.host=$node $deployment"
        # The delay is an argument of that shell, never part of its script.
        setsid sh -c 'sleep "$1"; sync; kexec -e' sh "$delay" </dev/null >/dev/null 2>&1 &
        echo "nxc: $node loaded; kexec in $delay s"

        """
    }

    /// Runs its arguments as root: directly when the SSH user is root, else through `sudo -n` (never
    /// a password prompt). Staging and kexec need root: the bundle folder is root's own, so that no
    /// other user of the host can swap a file between the push and the kexec. SSH_CONNECTION, which
    /// the check reports, survives sudo's clean environment.
    static let asRoot = """
        if [ "$(id -u)" = 0 ]; then exec "$@"; fi
        if command -v sudo >/dev/null 2>&1; then exec sudo -n -- env "SSH_CONNECTION=${SSH_CONNECTION:-}" "$@"; fi
        echo "nxc: staging and kexec need root: log in as root (nxc start -l root, or root@HOST in the machine file) or allow sudo -n" >&2
        exit 3
        """

    /// Shell function `stage DIR`, run before anything reads or writes the bundle folder: makes DIR
    /// and its parent if they are missing (mode 0700), then refuses either one if it is a link, not
    /// a folder, owned by another user, or writable by group or others. Once the parent is this
    /// user's own and closed to others, nobody else can change what DIR is or holds.
    static let stage = """
        umask 077
        stage() {
          for d in "${1%/*}" "$1"; do
            if [ -L "$d" ]; then printf 'nxc: %s is a symbolic link; refusing to stage through it (remove it)\\n' "$d" >&2; exit 3; fi
            if [ ! -e "$d" ]; then mkdir -m 0700 "$d" || exit 3; fi
            if [ -L "$d" ] || [ ! -d "$d" ]; then printf 'nxc: %s is not a folder (remove it)\\n' "$d" >&2; exit 3; fi
            owner=$(stat -c %u "$d")
            if [ "$owner" != "$(id -u)" ]; then
              printf 'nxc: %s is owned by uid %s, not %s; refusing to stage there (remove it)\\n' "$d" "$owner" "$(id -u)" >&2; exit 3
            fi
            case $(stat -c %A "$d") in
              ?????w*|????????w*) printf 'nxc: %s is writable by other users; refusing to stage there (remove it)\\n' "$d" >&2; exit 3 ;;
            esac
          done
        }
        """

    /// Run on each host before anything changes: facts as `@key value` lines. $1 is the bundle folder,
    /// $2 a folder the host may share with this machine (the build folder's own path, or
    /// --shared-dir; empty for none), then the size of each bundle file: a file is only hashed when
    /// its size matches; then the size of the initrd's system segment (0: none). A file the bundle folder lacks, and the shared folder has at that size, is
    /// copied from there first (`@from NAME shared`): the hash is then the local copy's, so what
    /// nxc compares with its own is what kexec will read.
    static let check = stage + "\n" + """
        PATH=$PATH:/usr/sbin:/sbin
        dir=$1; shared=$2; shift 2
        stage "$dir"
        echo "@arch $(uname -m)"
        echo "@uid $(id -u)"
        echo "@ssh ${SSH_CONNECTION:-}"
        echo "@boot $(cat /proc/sys/kernel/random/boot_id)"
        echo "@kexec $(command -v kexec || echo none)"
        echo "@tar $(command -v tar || echo none)"
        # For the pre-flight checks: RAM (kB), CPU model and count, NIC drivers, kernel.
        echo "@mem $(sed -n 's/^MemTotal: *\\([0-9]*\\).*/\\1/p' /proc/meminfo)"
        echo "@cpu $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -n 1) x$(grep -c '^processor' /proc/cpuinfo)"
        echo "@nic" $(for d in /sys/class/net/*/device/driver; do [ -e "$d" ] && basename "$(readlink -f "$d")"; done | sort -u)
        echo "@kernel $(uname -r)"
        # A node of an nxc image (--reuse): its own kernel and retained initrd, if it kept them.
        if [ "$(id -u)" = 0 ] && command -v nxc-agent >/dev/null 2>&1 && nxc-agent bundle "$dir" >/dev/null 2>&1; then
          echo "@bundle node"
        fi
        for f in kernel initrd kexec.sh; do
          want=${1:-0}; shift || true
          if ! { [ -f "$dir/$f" ] && [ "$(wc -c < "$dir/$f")" -eq "$want" ]; } && [ -n "$shared" ] \\
             && [ -f "$shared/$f" ] && [ "$(wc -c 2>/dev/null < "$shared/$f" || echo -1)" -eq "$want" ]; then
            if cp "$shared/$f" "$dir/.$f.part" 2>/dev/null && mv -f "$dir/.$f.part" "$dir/$f"; then
              echo "@from $f shared"
            else
              rm -f "$dir/.$f.part"; echo "@from $f unreadable"
            fi
          fi
          if [ -f "$dir/$f" ] && [ "$(wc -c < "$dir/$f")" -eq "$want" ]; then
            echo "@sha $f $(sha256sum < "$dir/$f" | cut -d' ' -f1)"
          fi
        done
        # The initrd's system segment (its first $1 bytes, when given): a host that has it needs
        # only the payload segment.
        if [ "${1:-0}" -gt 0 ] 2>/dev/null && [ -f "$dir/initrd" ] && [ "$(wc -c < "$dir/initrd")" -ge "$1" ]; then
          echo "@prefix $(head -c "$1" "$dir/initrd" | sha256sum | cut -d' ' -f1)"
        fi
        echo "@addr $(ip -j address show 2>/dev/null | tr -d '\\n')"
        echo "@route $(ip -j route show 2>/dev/null | tr -d '\\n')"
        """

    /// Unpacks the tar stream on stdin into $1: into $1/.in first, then each file renamed into
    /// place, so an interrupted push never leaves a half-written file under a bundle name.
    static let receive = stage + "\n" + #"set -e; stage "$1"; rm -rf "$1/.in"; mkdir "$1/.in"; tar -x -o -C "$1/.in"; "#
        + #"for f in "$1"/.in/*; do mv -f "$f" "$1/"; done; rmdir "$1/.in""#

    /// After `receive`: a pushed payload segment ($1/initrd.payload) joined to the first $2 bytes of
    /// the initrd already there (its system segment) into the new initrd, then its SHA-256 printed
    /// (`@sha initrd …`) for nxc to compare with its own; the old initrd stays when the join fails.
    static let join = stage + "\n" + #"set -e; stage "$1"; cd "$1"; [ -f initrd.payload ] || exit 0; "#
        + #"head -c "$2" initrd > .initrd.join; cat initrd.payload >> .initrd.join; mv -f .initrd.join initrd; rm -f initrd.payload; "#
        + #"echo "@sha initrd $(sha256sum < initrd | cut -d' ' -f1)""#

    /// Writes the deployment document from stdin into $1, then runs the bundle's kexec.sh for node $2.
    static let deployAndKexec = stage + "\n" + #"set -e; stage "$1"; cat > "$1/deployment.json.part"; mv -f "$1/deployment.json.part" "$1/deployment.json"; "#
        + #"exec sh "$1/kexec.sh" "$2" "$1/deployment.json""#
}
