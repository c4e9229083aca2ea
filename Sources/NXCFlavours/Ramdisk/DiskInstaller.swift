/// The installer a network-booted image carries (`nxc start -f pxe --install`): the machine boots
/// as its node in RAM, then this writes the composition's disk system to its disk and reboots into
/// it. Run by a oneshot unit after the agent, only when the kernel command line has `nxc.install=URL`.
///
/// URL is nxc's HTTP server (under the start's token): `URL/system.tar` is the g5k-image system,
/// unpacked by nxc from its tar.zst (the image has no zstd; plain tar costs no CPU on the node),
/// checked against `nxc.install_sha256=`; `URL/boot.params` the image's kernel parameters;
/// `URL/report?node=N&event=E` where each outcome is said (`installed`, or `failed-STEP`).
/// The disk is `nxc.install_disk=NAME`, else the first fixed disk the kernel lists. It gets one
/// bootable partition (MBR, from 1 MiB), ext4 without the 64bit feature (extlinux reads it), the
/// system, this node's identity (/etc/nxc, SSH host keys: it answers as the same node after the
/// reboot) and extlinux with the image's kernel, initramfs and parameters (BIOS boot).
/// No command is built from strings: every value read goes into argv or a file.
public enum DiskInstaller {
    public static let path = "/usr/lib/nxc/nxc-install"
    public static let unitPath = "/usr/lib/systemd/system/nxc-install.service"

    public static let unit = """
        [Unit]
        Description=nxc installer: write this node's disk system and reboot into it (nxc start --install)
        Documentation=https://github.com/nxc/nxc
        ConditionKernelCommandLine=nxc.install
        After=nxc-agent.service ssh.service

        [Service]
        Type=oneshot
        ExecStart=\(path)
        StandardOutput=journal+console
        StandardError=journal+console
        TimeoutStartSec=3600

        [Install]
        WantedBy=multi-user.target

        """

    public static let script = #"""
        #!/bin/sh
        # nxc-install: writes this node's disk system and reboots into it (nxc start -f pxe --install).
        # Started by nxc-install.service when the kernel command line has nxc.install=URL.
        set -u
        bb=/usr/bin/busybox
        url= disk= sum=
        set -f
        for w in $(cat /proc/cmdline); do
          case $w in
            nxc.install=*) url=${w#nxc.install=} ;;
            nxc.install_disk=*) disk=${w#nxc.install_disk=} ;;
            nxc.install_sha256=*) sum=${w#nxc.install_sha256=} ;;
          esac
        done
        set +f
        [ -n "$url" ] || exit 0
        node=$(cat /etc/nxc/hostname 2>/dev/null) || node=unknown
        t=/run/nxc/target
        say() { echo "nxc-install: $*"; }
        report() {
          # (busybox-static's wget -T crashes: coreutils' timeout bounds it.)
          timeout 30 "$bb" wget -q -O /dev/null "$url/report?node=$node&event=$1" || say "could not report $1 to nxc"
        }
        fail() {
          echo "nxc-install: $1 failed: $2" >&2
          umount -R "$t" 2>/dev/null
          report "failed-$1"
          exit 1
        }
        [ -x "$bb" ] || fail tools "no $bb (busybox-static) in this image"
        [ -f /run/nxc/ready ] && [ ! -s /run/nxc/failed ] || fail agent "nxc-agent boot did not finish without errors (/run/nxc/failed)"

        # The disk: the one named, else the first fixed disk with a size.
        if [ -z "$disk" ]; then
          for d in /sys/block/*; do
            n=${d##*/}
            case $n in loop*|ram*|sr*|zram*|nbd*|dm-*|md*|fd*) continue ;; esac
            [ "$(cat "$d/removable" 2>/dev/null)" = 0 ] || continue
            [ "$(cat "$d/size" 2>/dev/null || echo 0)" -gt 0 ] || continue
            disk=$n
            break
          done
        fi
        disk=${disk#/dev/}
        case $disk in ''|*/*) fail disk "no disk to install on (nxc start --install-disk NAME names one)" ;; esac
        [ -e "/sys/block/$disk" ] || fail disk "no disk $disk on this machine"
        dev=/dev/$disk
        if grep -q "^$dev" /proc/mounts; then fail disk "$dev is in use (mounted)"; fi
        case $disk in *[0-9]) part=${dev}p1 ;; *) part=${dev}1 ;; esac

        say "partitioning $dev: one bootable Linux partition from 1 MiB"
        "$bb" dd if=/dev/zero of="$dev" bs=1048576 count=1 conv=notrunc 2>/dev/null || fail partition "cannot write $dev"
        printf 'o\nn\np\n1\n2048\n\na\n1\nw\n' | "$bb" fdisk "$dev" >/dev/null 2>&1
        "$bb" blockdev --rereadpt "$dev" 2>/dev/null
        udevadm settle -t 30 2>/dev/null
        i=0
        while [ ! -b "$part" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
        [ -b "$part" ] || fail partition "$part did not appear after partitioning $dev"

        uuid=$(cat /proc/sys/kernel/random/uuid)
        mke2fs -q -F -t ext4 -O ^64bit -L nxc-root -U "$uuid" "$part" || fail mkfs "mke2fs -t ext4 on $part"
        mkdir -p "$t" && mount -t ext4 "$part" "$t" || fail mount "mounting $part"

        say "writing the system from nxc's server onto $part"
        fifo=/run/nxc/install.fifo
        rm -f "$fifo" /run/nxc/install.sha256 /run/nxc/install.fetch
        mkfifo "$fifo" || fail unpack "mkfifo"
        sha256sum < "$fifo" > /run/nxc/install.sha256 &
        summer=$!
        { "$bb" wget -q -O - "$url/system.tar" || echo failed > /run/nxc/install.fetch; } | tee "$fifo" \
          | tar -x -p --numeric-owner --xattrs --xattrs-include='*' -C "$t" || fail unpack "tar into $part"
        wait "$summer"
        [ ! -e /run/nxc/install.fetch ] || fail fetch "$url/system.tar"
        read -r got _ < /run/nxc/install.sha256
        [ -z "$sum" ] || [ "$got" = "$sum" ] || fail fetch "the system's SHA-256 is $got, nxc announced $sum"

        # This node's identity: it answers as the same node, with the same host keys, from its disk.
        mkdir -p "$t/etc/nxc" "$t/etc/ssh" "$t/root/.ssh" || fail identity "mkdir"
        cp /etc/nxc/hostname /etc/nxc/role /etc/nxc/deployment.json "$t/etc/nxc/" || fail identity "copying /etc/nxc"
        for k in /etc/ssh/ssh_host_*; do
          [ -e "$k" ] && { cp -p "$k" "$t/etc/ssh/" || fail identity "copying $k"; }
        done
        [ -f /root/.ssh/authorized_keys ] && cp -p /root/.ssh/authorized_keys "$t/root/.ssh/"

        # The boot loader: extlinux from the image, the image's kernel, initramfs and parameters.
        for d in dev proc sys; do mount --bind "/$d" "$t/$d" || fail bootloader "binding /$d"; done
        k=$(cd "$t/boot" && ls vmlinuz-* 2>/dev/null | sort | tail -n 1)
        v=${k#vmlinuz-}
        [ -n "$k" ] && [ -f "$t/boot/initrd.img-$v" ] || fail bootloader "no kernel and initrd.img in the image's /boot"
        params=$(timeout 30 "$bb" wget -q -O - "$url/boot.params") || fail bootloader "fetching $url/boot.params"
        mkdir -p "$t/boot/extlinux" || fail bootloader "mkdir /boot/extlinux"
        printf 'DEFAULT nxc\nPROMPT 0\nTIMEOUT 0\nLABEL nxc\n  LINUX /boot/%s\n  INITRD /boot/initrd.img-%s\n  APPEND root=UUID=%s %s\n' \
          "$k" "$v" "$uuid" "$params" > "$t/boot/extlinux/extlinux.conf" || fail bootloader "writing extlinux.conf"
        chroot "$t" extlinux --install /boot/extlinux >/dev/null || fail bootloader "extlinux --install (the image needs extlinux)"
        mbr=$t/usr/lib/syslinux/mbr/mbr.bin
        [ -f "$mbr" ] || fail bootloader "no $mbr in the image (syslinux-common)"
        "$bb" dd if="$mbr" of="$dev" bs=440 count=1 conv=notrunc 2>/dev/null || fail bootloader "writing the boot code to $dev"
        umount -R "$t" || fail unmount "$t"
        sync
        report installed
        say "installed on $dev ($part, UUID $uuid); rebooting into it"
        systemctl reboot --force --force
        """#
}
