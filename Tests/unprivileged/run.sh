#!/bin/bash
# Building as a normal user, tested: what a Grid'5000 frontend user does, where nobody is root.
#
#   Tests/unprivileged/run.sh [RELEASE_DIR]      (as root; `make test` runs it; RELEASE_DIR holds
#                                                 nxc and nxc-agent, default .build/release)
#
# 1. Makes sure of a test user, nxc-unpriv (useradd, with a range of 65536 subordinate IDs), and of
#    a second one without such a range, nxc-nosubid. Both are kept for the next run.
# 2. Installs nxc, nxc-agent and the flavours the way `make install` lays them out, under a private
#    folder the users can read (the source tree may not be), with a copy of compositions/hello.
# 3. As nxc-nosubid, in unshare mode (else nxc would use fakechroot mode where it is installed):
#    `nxc build` must fail within seconds, naming /etc/subuid and `usermod --add-subuids` (before:
#    mmdebstrap's own words with no hint).
# 4. As nxc-unpriv, with its own HOME and store: `nxc build -f vm-ramdisk`, then `nxc start`, a check
#    over SSH of owners and modes on the booted node, `nxc stop`.
# 5. As root: the same composition with the lock the user's build wrote, and a comparison of the two
#    initrds, member by member: same names, owners, modes and types.
# 6. As nxc-unpriv: removes its project and its store (the store must be the user's to delete), then
#    root removes the rest.
# mmdebstrap and QEMU run here: take the heavy lock first (flock /tmp/nxc-heavy.lock …).
# Needs: mmdebstrap uidmap qemu-system-x86 vde2 openssh-client zstd python3 (fakechroot fakeroot
# for NXC_ROOTFS_MODE=fakechroot, which this script passes on to the user's nxc).
# Exit status: 0 if every check passed.
set -u

[ "$(id -u)" = 0 ] || { echo "run as root (it creates the test users and compares with a build as root)" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
release=$(readlink -f "${1:-$repo/.build/release}")
for f in nxc nxc-agent; do [ -x "$release/$f" ] || { echo "missing $release/$f (make build)" >&2; exit 2; }; done
for tool in newuidmap mmdebstrap qemu-system-x86_64 vde_switch ssh zstd python3 runuser; do
    command -v "$tool" > /dev/null || { echo "missing $tool; apt-get install uidmap mmdebstrap qemu-system-x86 vde2 openssh-client zstd python3" >&2; exit 2; }
done

user=nxc-unpriv
nosubid=nxc-nosubid
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# A subordinate ID range no one has yet: above every range of /etc/subuid and /etc/subgid.
free_range_start() {
    cat /etc/subuid /etc/subgid 2> /dev/null | awk -F: 'BEGIN { m = 100000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }'
}
if ! id "$user" > /dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --comment "nxc unprivileged build test" "$user" || exit 2
fi
if ! grep -q "^$user:" /etc/subuid || ! grep -q "^$user:" /etc/subgid; then
    start=$(free_range_start)
    usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$user" || exit 2
fi
if ! id "$nosubid" > /dev/null 2>&1; then
    useradd --no-create-home --shell /usr/sbin/nologin -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 \
        --comment "nxc test, a user without subordinate IDs" "$nosubid" || exit 2
fi
# Earlier runs or other tools may have given it a range: this user is the one without.
if grep -q "^$nosubid:" /etc/subuid /etc/subgid; then
    sed -i "/^$nosubid:/d" /etc/subuid /etc/subgid
fi

work=$(mktemp -d /tmp/nxc-unpriv.XXXXXX)
chmod 755 "$work"
prefix=$work/prefix
home=$work/home
project=$home/hello
rootproject=$work/root-hello
started_vm=0
as_user() { # as_user TIMEOUT COMMAND... : in the user's project folder, with a clean environment
    local t=$1; shift
    timeout --kill-after=10 "$t" runuser -u "$user" -- env -i -C "$project" HOME="$home" USER="$user" LOGNAME="$user" \
        PATH="$prefix/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" LANG=C.UTF-8 TERM=dumb \
        ${NXC_ROOTFS_MODE:+NXC_ROOTFS_MODE=$NXC_ROOTFS_MODE} ${NXC_MIRROR:+NXC_MIRROR=$NXC_MIRROR} "$@"
}
cleanup() {
    if [ "$started_vm" = 1 ]; then as_user 120 nxc stop > /dev/null 2>&1; fi
    # Anything of the test user still running was started by this test: stopped by its PID.
    local pid
    for pid in $(ps -u "$user" -o pid=,stat= 2> /dev/null | awk '$2 !~ /^Z/ { print $1 }'); do kill "$pid" 2> /dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$prefix/bin" "$prefix/lib/nxc" "$prefix/share/nxc" "$home"
install -m 755 "$release/nxc" "$prefix/bin/nxc"
install -m 755 "$release/nxc-agent" "$prefix/lib/nxc/nxc-agent"
cp -r "$repo/flavours" "$repo/templates" "$prefix/share/nxc/"
chmod -R a+rX "$prefix"
cp -r "$repo/compositions/hello" "$project"
rm -rf "$project/build" "$project/deploy" "$project/.nxc" "$project/composition.lock"
chown -R "$user:" "$home"
chmod 700 "$home"

# 3. A user without subordinate IDs learns why and what to do, in seconds.
t=$(now)
cp -r "$repo/compositions/hello" "$work/nosubid-hello"
chmod -R a+rX "$work/nosubid-hello"
out=$(timeout 60 runuser -u "$nosubid" -- env -i -C "$work/nosubid-hello" HOME=/nonexistent \
      PATH="$prefix/bin:/usr/bin:/bin:/usr/sbin:/sbin" NXC_STORE="$work/nosubid-store" NXC_ROOTFS_MODE=unshare \
      nxc build -f vm-ramdisk 2>&1)
rc=$?
echo "no subordinate IDs: exit $rc after $(since "$t") s"
[ "$rc" != 0 ] || fail "a build by $nosubid succeeded"
case "$out" in
    *"/etc/subuid has no range of subordinate IDs for user '$nosubid'"*"usermod --add-subuids"*) ;;
    *) fail "the error for $nosubid does not name /etc/subuid and usermod:"$'\n'"$out" ;;
esac
case "$out" in *NSCocoaErrorDomain*|*"cannot find newuidmap"*) fail "raw error: $out" ;; esac
[ -e "$work/nosubid-store" ] && [ -n "$(ls -A "$work/nosubid-store" 2> /dev/null | grep -v '^\.')" ] \
    && fail "the failed build left store entries: $(ls -A "$work/nosubid-store")"

# 4. The user's build, boot, check, stop.
t=$(now)
as_user 2400 nxc build -f vm-ramdisk 2>&1 | tee "$work/user-build.log"
rc=${PIPESTATUS[0]}
build_time=$(since "$t")
echo "build as $user: exit $rc, $build_time s"
if [ "$rc" != 0 ]; then
    fail "nxc build as $user"
else
    t=$(now)
    started_vm=1
    as_user 900 nxc start -f vm-ramdisk
    rc=$?
    echo "start as $user: exit $rc, $(since "$t") s"
    if [ "$rc" != 0 ]; then
        fail "nxc start as $user"
        tail -30 "$project"/.nxc/run/*/*.log 2> /dev/null
    else
        t=$(now)
        got=$(as_user 120 nxc exec hello -- stat -c '%U:%G %a %n' /etc/shadow /usr/bin/passwd /usr/bin/chage /root /tmp /var/mail \
              /var/log/journal)
        rc=$?
        echo "check on the node: exit $rc, $(since "$t") s"
        expected="root:shadow 640 /etc/shadow
root:root 4755 /usr/bin/passwd
root:shadow 2755 /usr/bin/chage
root:root 700 /root
root:root 1777 /tmp
root:mail 2775 /var/mail
root:systemd-journal 2755 /var/log/journal"
        [ "$got" = "$expected" ] || fail "owners on the node:"$'\n'"$got"$'\n'"expected:"$'\n'"$expected"
    fi
    t=$(now)
    as_user 120 nxc stop
    rc=$?
    started_vm=0
    echo "stop as $user: exit $rc, $(since "$t") s"
    [ "$rc" = 0 ] || fail "nxc stop as $user"
    # Zombies do not count: daemonised QEMU and vde_switch are reaped by PID 1, when it gets to it.
    left=$(ps -u "$user" -o pid=,stat=,comm= 2> /dev/null | awk '$2 !~ /^Z/')
    [ -z "$left" ] || fail "processes of $user left after nxc stop: $left"
fi

# 5. The same composition built as root (same lock, so the same versions), initrds compared.
list_initrd() { # every member of a multi-segment zstd cpio initrd: MODE UID GID NAME, in archive order
    zstd -dc "$1" | python3 -c '
import sys
data = sys.stdin.buffer.read()
o = 0
while o + 110 <= len(data):
    if data[o:o + 6] != b"070701":
        o += 1  # padding between segments
        continue
    h = data[o:o + 110]
    mode, uid, gid = (int(h[i:i + 8], 16) for i in (14, 22, 30))
    size, namesize = int(h[54:62], 16), int(h[94:102], 16)
    name = data[o + 110:o + 110 + namesize - 1].decode("utf-8", "backslashreplace")
    o = (o + 110 + namesize + 3) & ~3
    o = (o + size + 3) & ~3
    if name != "TRAILER!!!":
        print("%o %d %d %s" % (mode, uid, gid, name))
'
}
if [ -s "$project/build/hello/vm-ramdisk/initrd" ] && [ -s "$project/composition.lock" ]; then
    cp -r "$repo/compositions/hello" "$rootproject"
    rm -rf "$rootproject/build" "$rootproject/deploy" "$rootproject/.nxc"
    cp "$project/composition.lock" "$rootproject/composition.lock"
    t=$(now)
    (cd "$rootproject" && timeout --kill-after=10 2400 "$prefix/bin/nxc" build -f vm-ramdisk) > "$work/root-build.log" 2>&1
    rc=$?
    echo "build as root: exit $rc, $(since "$t") s"
    if [ "$rc" != 0 ]; then
        fail "nxc build as root"; tail -20 "$work/root-build.log"
    else
        # fakechroot mode only: package scripts that set owners through /proc/self/fd (systemd-tmpfiles)
        # are not seen by fakeroot. systemd sets these again at every boot (checked on the node above).
        known='^$'
        if grep -q "fakechroot mode" "$work/user-build.log"; then known='^[0-7]+ [0-9]+ [0-9]+ var/log/journal$'; fi
        list_initrd "$project/build/hello/vm-ramdisk/initrd" > "$work/user.full"
        list_initrd "$rootproject/build/hello/vm-ramdisk/initrd" > "$work/root.full"
        grep -v -E "$known" "$work/user.full" > "$work/user.list"
        grep -v -E "$known" "$work/root.full" > "$work/root.list"
        if ! diff -q "$work/root.full" "$work/user.full" > /dev/null && diff -q "$work/root.list" "$work/user.list" > /dev/null; then
            echo "initrd: known difference of fakechroot mode:"; diff "$work/root.full" "$work/user.full"
        fi
        n=$(wc -l < "$work/user.list")
        if [ "$n" -lt 1000 ]; then
            fail "the user's initrd lists only $n members"
        elif ! diff -q "$work/root.list" "$work/user.list" > /dev/null; then
            fail "initrd members differ between the build as root (<) and as $user (>):"
            diff "$work/root.list" "$work/user.list" | head -40
        else
            echo "initrd: $n members, same names, owners, modes and types as the build as root" \
                "($(awk '$2 != 0 || $3 != 0' "$work/user.list" | wc -l) not root:root, $(awk '$1 ~ /^(20|60|10)[0-7][0-7][0-7]$/' "$work/user.list" | wc -l) device nodes or fifos)"
            if cmp -s "$project/build/hello/vm-ramdisk/initrd" "$rootproject/build/hello/vm-ramdisk/initrd"; then
                echo "initrd: byte for byte the same as the build as root"
            else
                echo "initrd: contents differ from the build as root (owners and modes do not)"
            fi
        fi
    fi
fi

# 6. The user removes what it made, store included.
store=$home/.cache/nxc
t=$(now)
if ! as_user 300 rm -rf "$project" "$store"; then
    fail "$user cannot remove its own store: $(find "$store" ! -user "$user" 2> /dev/null | head -5)"
fi
echo "removal of the user's project and store: $(since "$t") s"
[ ! -e "$store" ] || fail "$store is still there"

if [ "$failures" = 0 ]; then echo "unprivileged: all checks passed"; else echo "unprivileged: $failures failure(s)"; fi
[ "$failures" = 0 ]
