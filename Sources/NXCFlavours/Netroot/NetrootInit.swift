/// The /init of a netroot initrd: busybox (Debian's busybox-static) and a shell script. It loads the
/// initrd's modules, puts the deployment's addresses on the interfaces (`nxc.if=MAC,ADDR/LEN`,
/// `nxc.route=TO,VIA`, as the agent does later), mounts the system read-only from `nxc.root=URL`
/// as the lower layer of an overlay whose upper layer is per-node writable state (tmpfs), copies
/// nxc's payload (agent, units, role files; the initrd's last segments, under /payload) into it,
/// binds the node's own state folders over their places when its role keeps some (`nxc.state=URL`,
/// read-write, `nxc.state_paths=/a,/b`: seeded from the system the first time), and hands over to
/// the system's own init. Every wait has a bound; on failure it says why on the
/// console and reboots, which returns a testbed host to its own system.
enum NetrootInit {
    /// Folder of the initrd that holds the payload segments, copied onto the system at boot.
    static let payloadDir = "/payload"

    static let script = #"""
        #!/bin/busybox sh
        # nxc netroot initrd (written by nxc build): the system read-only over the network, per-node
        # state in RAM, then the system's own init.
        /bin/busybox mkdir -p /proc /sys /dev /run /tmp /lower /rw /newroot /sbin /usr/bin /usr/sbin
        /bin/busybox mount -t proc proc /proc
        /bin/busybox --install -s
        export PATH=/sbin:/bin:/usr/sbin:/usr/bin
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        say() { echo "nxc-initrd: $*" > /dev/console; }
        fail() { say "error: $*"; say "rebooting in 30 s"; sleep 30; reboot -f; }

        root=; ifs=; routes=; node=; state=; keep=
        for w in $(cat /proc/cmdline); do
          case $w in
            nxc.root=*) root=${w#nxc.root=} ;;
            nxc.state=*) state=${w#nxc.state=} ;;
            nxc.state_paths=*) keep=${w#nxc.state_paths=} ;;
            nxc.host=*) node=${w#nxc.host=} ;;
            nxc.if=*) ifs="$ifs ${w#nxc.if=}" ;;
            nxc.route=*) routes="$routes ${w#nxc.route=}" ;;
          esac
        done
        [ -n "$root" ] || fail "no nxc.root= on the kernel command line"

        # Drivers (NICs: from the NIC segments that follow the core, then NFS and overlay), each with
        # what it depends on.
        cat /etc/nxc-initrd/modules.nic.d/* /etc/nxc-initrd/modules 2>/dev/null | while read -r m; do modprobe "$m" 2>/dev/null || true; done

        # ADDR/255.255.255.0 (as iPXE gives the netmask) as ADDR/24; ADDR/LEN as it is.
        prefixed() {
          case ${1#*/} in
            *.*) len=0
                 for o in $(echo "${1#*/}" | tr . ' '); do
                   case $o in 255) len=$((len + 8)) ;; 254) len=$((len + 7)) ;; 252) len=$((len + 6)) ;; 248) len=$((len + 5)) ;;
                     240) len=$((len + 4)) ;; 224) len=$((len + 3)) ;; 192) len=$((len + 2)) ;; 128) len=$((len + 1)) ;; esac
                 done
                 echo "${1%%/*}/$len" ;;
            *) echo "$1" ;;
          esac
        }
        # The deployment's addresses, on the interfaces found by MAC address.
        ip link set lo up
        [ -n "$ifs" ] || fail "no nxc.if= on the kernel command line: the node's address is not known"
        for spec in $ifs; do
          mac=$(echo "${spec%%,*}" | tr A-F a-f)
          dev=; n=0
          while [ -z "$dev" ] && [ $n -lt 300 ]; do
            for d in /sys/class/net/*; do
              [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && dev=${d##*/}
            done
            [ -n "$dev" ] || { sleep 0.1; n=$((n + 1)); }
          done
          [ -n "$dev" ] || fail "no network interface with MAC $mac within 30 s"
          ip link set "$dev" up
          case $spec in *,*) for a in $(echo "${spec#*,}" | tr , ' '); do ip address add "$(prefixed "$a")" dev "$dev" || true; done ;; esac
        done
        # An empty gateway (pxe: iPXE's ${netX/gateway} when DHCP gave none) adds no route.
        for r in $routes; do [ -z "${r#*,}" ] || ip route replace "${r%%,*}" via "${r#*,}" || true; done

        # Each machine its own NFSv4 client identity (machines that boot alike would all be "(none)",
        # and the server would take them for one client): the node's name and its MAC address.
        [ -z "$node" ] || hostname "$node"
        [ -w /sys/fs/nfs/net/nfs_client/identifier ] && echo "nxc-$node-$mac" > /sys/fs/nfs/net/nfs_client/identifier

        # nfs://SERVER/PATH mounted on $3 with options $2 (ro or rw): NFS version 4.2, else 3.
        nfsmount() {
          case $1 in
            nfs://*/*) rest=${1#nfs://}; server=${rest%%/*}; path=/${rest#*/} ;;
            *) fail "$1: expected nfs://SERVER/PATH" ;;
          esac
          n=0
          until mount -t nfs -o "$2,vers=4.2,nolock" "$server:$path" "$3" 2>/tmp/err \
                || mount -t nfs -o "$2,vers=3,nolock,proto=tcp" "$server:$path" "$3" 2>>/tmp/err; do
            n=$((n + 1))
            [ $n -lt 30 ] || fail "cannot mount $server:$path: $(tail -n 1 /tmp/err)"
            sleep 2
          done
        }
        # The system, read-only: the tree itself, or a squashfs image of it in a folder the node
        # mounts (nfs://SERVER/DIR/TREE.sqfs: a store folder, such as one in an NFS home).
        case $root in
          *.sqfs)
            mkdir -p /store
            nfsmount "${root%/*}" ro /store
            image=/store/${root##*/}
            [ -f "$image" ] || fail "$server:$path has no ${root##*/}"
            mount -t squashfs -o ro,loop "$image" /lower 2>/tmp/err || fail "cannot mount ${root##*/} from $server:$path: $(tail -n 1 /tmp/err)"
            say "system: ${root##*/} in $server:$path (read-only)" ;;
          *)
            nfsmount "$root" ro /lower
            say "system: $server:$path (read-only)" ;;
        esac
        [ -L /lower/sbin/init ] || [ -x /lower/sbin/init ] || fail "$root has no /sbin/init"

        # Per-node state: a tmpfs as the overlay's upper layer.
        mount -t tmpfs -o mode=0755 nxc-state /rw || fail "cannot mount the state tmpfs"
        mkdir -p /rw/upper /rw/work
        mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "cannot mount the overlay"
        cp -a /payload/. /newroot/ || fail "cannot copy nxc's payload onto the system"
        # The node's own state folders (its role's `state:`), read-write on the store, each bound over
        # its place; a folder seen for the first time starts as the system has it.
        if [ -n "$state" ] && [ -n "$keep" ]; then
          mkdir -p /state
          nfsmount "$state" rw /state
          for p in $(echo "$keep" | tr , ' '); do
            case $p in /*) ;; *) fail "nxc.state_paths: $p is not absolute" ;; esac
            if [ ! -d "/state$p" ]; then
              mkdir -p "/state$p" || fail "cannot make $p in the node's state folder"
              [ -d "/newroot$p" ] && { cp -a "/newroot$p/." "/state$p/" || fail "cannot seed $p in the node's state folder"; }
            fi
            mkdir -p "/newroot$p" && mount --bind "/state$p" "/newroot$p" || fail "cannot bind $p from the node's state folder"
          done
          say "state: $keep kept in $server:$path"
        fi
        for m in dev proc sys; do mount --move "/$m" "/newroot/$m" || fail "cannot move /$m"; done
        exec switch_root /newroot /sbin/init
        """#
}
