#!/usr/bin/env bash
# bench/pxe.sh: the pxe flavours beside vm-ramdisk on the same composition (compositions/webserver), as a site
# boots them (issue 15). Writes docs/benchmarks-pxe.md.
#
# The site is what Tests/EndToEndTests/PxeTests.swift builds: a bridge in a network namespace of its own, dnsmasq
# as its DHCP server (one address per MAC, the boot file nxc's iPXE script), QEMU VMs with no kernel and no disk
# booting from the iPXE ROM of Debian's ipxe-qemu on taps of the bridge. One store VM (stockhost's store role,
# booted with pxe) serves pxe-nfs-store's tree over NFS. vm-ramdisk runs its own VMs on this machine, as usual.
# Per flavour and N (1 and 3 nodes), RUNS times: the time from power-on until `nxc start` has every node answering
# SSH as itself (vm-ramdisk: the whole start); the bytes each machine fetched before it answered (pxe: nxc's HTTP
# server's count per machine; vm-ramdisk: the kernel and initrd QEMU loads); the RAM used on a node after boot
# (`free`: total - available); the RAM each VM's QEMU holds on this machine (its RSS), and from it how many such
# VMs this machine's available RAM holds.
#
# Environment: NXC_BIN, NXC_STORE as bench/scale.sh; RUNS (default 3); PXE_OUT (default docs/benchmarks-pxe.md).
# Needs root (network namespace, taps). Safety: the VMs' network is the namespace's bridge; every VM is stopped
# by its PID, the namespace is deleted at the end.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
STORE=${NXC_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxc}
RUNS=${RUNS:-3}
OUT=${PXE_OUT:-$REPO/docs/benchmarks-pxe.md}
STOCK=$REPO/Tests/EndToEndTests/Fixtures/stockhost
WEB=$REPO/compositions/webserver
PY=/usr/bin/python3
MEMORY=1536
T0=$(date +%s)

say() { printf '[pxe %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
[ "$(id -u)" = 0 ] || die "needs root (a network namespace with a bridge and taps)"
[ -x "$NXC" ] || die "$NXC not found; run \`make build\`"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "RUNS must be a positive number"
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || die "dnsmasq not found (apt-get install dnsmasq-base)"

WORK=$(mktemp -d /tmp/nxc-pxe-bench.XXXXXX)
P=$WORK/p; L=$WORK/logs
mkdir -p "$P" "$L"
NS=nxcpxeb$$
SUBNET=10.94.0
SERVER=$SUBNET.1
PORT=8771
PIDS=()
mac() { printf '52:54:00:94:00:%02x' $((0x10 + $1)); }
nxc_() { local sub=$1; shift; HOME=$P NXC_STORE=$STORE timeout 1800 "$NXC" "$sub" --project "$P" "$@"; }
inns() { ip netns exec "$NS" "$@"; }
# nxc in the namespace (the pxe machines are only reachable there; vm-ramdisk's forwarded ports only outside).
nxcns_() { local sub=$1; shift; HOME=$P NXC_STORE=$STORE inns timeout 1800 "$NXC" "$sub" --project "$P" "$@"; }
stop_pid() { # PID: TERM, then KILL after 5 s
  kill -0 "$1" 2>/dev/null || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?; set +e
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  nxc_ stop -f vm-ramdisk --composition webserver >>"$L/stop.log" 2>&1
  ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building stockhost (pxe) and webserver (pxe, pxe-nfs-store, vm-ramdisk)"
nxc_ build -f pxe "$STOCK" >"$L/build.log" 2>&1 || { tail -20 "$L/build.log" >&2; die "build of stockhost failed"; }
for f in pxe pxe-nfs-store vm-ramdisk; do
  nxc_ build -f "$f" "$WEB" >>"$L/build.log" 2>&1 || { tail -20 "$L/build.log" >&2; die "build of webserver ($f) failed"; }
done
size() { stat -c %s "$P/build/webserver/$1/$2"; }

# The site: bridge, taps 1-4 (4: the store), DHCP.
ip netns add "$NS"
inns ip link set lo up
inns ip link add br0 type bridge
inns ip address add "$SERVER/24" dev br0
inns ip link set br0 up
dhcp=("$DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=0 --interface=br0 --bind-interfaces
      --user=root "--dhcp-range=$SUBNET.100,$SUBNET.199,255.255.255.0,1h" "--dhcp-leasefile=$WORK/leases"
      "--dhcp-boot=http://$SERVER:$PORT/boot.ipxe")
for i in 1 2 3 4; do
  inns ip tuntap add dev "tap$i" mode tap
  inns ip link set "tap$i" master br0
  inns ip link set "tap$i" up
  dhcp+=("--dhcp-host=$(mac $i),$SUBNET.1$i")
done
ip netns exec "$NS" "${dhcp[@]}" >"$L/dnsmasq.log" 2>&1 </dev/null &
PIDS+=($!)

# A machine with no kernel and no disk on tap I, booting from the network; its PID in VM_PID.
power_on() { # I MEMORY
  # ip netns exec execs QEMU: $! is QEMU's PID (a shell function here would put a subshell in between).
  ip netns exec "$NS" qemu-system-x86_64 -name "pxe$1" -machine pc -accel tcg,tb-size=128 -cpu max -smp 1 -m "$2" -nodefaults \
    -display none -no-reboot -boot n -netdev "tap,id=n0,ifname=tap$1,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=n0,mac=$(mac "$1")" -serial "file:$L/console-$1.log" >"$L/qemu-$1.log" 2>&1 </dev/null &
  VM_PID=$!
  PIDS+=("$VM_PID")
}
# `nxc start ARGS` in the namespace, in the background, once its server listens; its PID in START_PID.
serve() { # LOG ARGS...
  local log=$1; shift
  HOME=$P NXC_STORE=$STORE ip netns exec "$NS" timeout 1800 "$NXC" start --project "$P" --http-port "$PORT" "$@" >"$log" 2>&1 </dev/null &
  START_PID=$!
  PIDS+=("$START_PID")
  for _ in $(seq 600); do
    grep -q 'PXE: boot these machines' "$log" && return 0
    kill -0 "$START_PID" 2>/dev/null || { tail -20 "$log" >&2; die "nxc start ended before serving"; }
    sleep 0.2
  done
  die "nxc start did not serve within 120 s"
}
rss_of() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
free_on() { # FLAVOUR NODE: bytes used (free: total - available)
  local run=nxcns_; [ "$1" = vm-ramdisk ] && run=nxc_
  $run exec "$2" -- sh -c "free -b | awk '/^Mem:/ {print \$2 - \$7}'"
}

say "the store host: stockhost's store role, booted with pxe"
echo "$SUBNET.14 $(mac 4)" >"$WORK/store-machine"
serve "$L/store.log" -f pxe -m "$WORK/store-machine" -r host=0 "$STOCK"
power_on 4 2560
wait "$START_PID" || { tail -30 "$L/store.log" >&2; die "the store host did not come up"; }
nxcns_ exec store -- sh -c 'mkdir -p /srv/nxc && mount -t tmpfs -o mode=0700 nxc-store /srv/nxc' >/dev/null || die "cannot mount the store's tmpfs"

ROWS=()
for k in $(seq 1 "$RUNS"); do
  for n in 1 3; do
    order="pxe pxe-nfs-store vm-ramdisk"; [ $((k % 2)) = 0 ] && order="vm-ramdisk pxe-nfs-store pxe"
    for f in $order; do
      log=$L/run-$k-$n-$f.log
      vms=()
      if [ "$f" = vm-ramdisk ]; then
        t0=$(now)
        nxc_ start -f vm-ramdisk -r "client=$((n - 1))" --timeout 900 "$WEB" >"$log" 2>&1 || { tail -30 "$log" >&2; die "run $k N=$n: vm-ramdisk"; }
        secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
        bytes=$(( $(size vm-ramdisk kernel) + $(size vm-ramdisk initrd) ))
        vms=($($PY -c 'import json,sys; print(" ".join(str(p["pid"]) for p in json.load(open(sys.argv[1]))["processes"]))' \
          "$P/.nxc/run/webserver.vm-ramdisk/state.json"))
      else
        : >"$WORK/machines"
        for i in $(seq 1 "$n"); do echo "$SUBNET.1$i $(mac "$i")" >>"$WORK/machines"; done
        extra=(); [ "$f" = pxe-nfs-store ] && extra=(--store-host "root@$SUBNET.14")
        serve "$log" -f "$f" -m "$WORK/machines" -r "client=$((n - 1))" --timeout 900 "${extra[@]}" "$WEB"
        t0=$(now)
        for i in $(seq 1 "$n"); do power_on "$i" "$MEMORY"; vms+=("$VM_PID"); done
        wait "$START_PID" || { tail -30 "$log" >&2; die "run $k N=$n: nxc start -f $f failed"; }
        secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
        bytes=$($PY -c 'import json,sys
b = [h["bytesReceived"] for h in json.load(open(sys.argv[1]))["hosts"] if h["state"] == "up"]
print(max(b) if b else 0)' "$P/deploy/webserver.$f.report.json")
      fi
      run=nxcns_; [ "$f" = vm-ramdisk ] && run=nxc_
      page=$($run exec server -- curl -sf http://server/ 2>/dev/null || true)
      [ "$page" = "hello from nxc" ] || die "run $k N=$n $f: the page: $page"
      ram=0
      for node in $($PY -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["order"]))' "$P/deploy/webserver.$f.json"); do
        used=$(free_on "$f" "$node") || die "run $k N=$n $f: free on $node"
        [ "$used" -gt "$ram" ] && ram=$used
      done
      rss=0
      for p in "${vms[@]}"; do r=$(rss_of "$p"); [ "$r" -gt "$rss" ] && rss=$r; done
      say "run $k N=$n $f: up in $secs s; per node: $bytes bytes fetched, $((ram >> 20)) MiB used; QEMU RSS $((rss >> 20)) MiB"
      ROWS+=("$f $n $secs $bytes $ram $rss")
      if [ "$f" = vm-ramdisk ]; then
        nxc_ stop -f vm-ramdisk --composition webserver >>"$L/stop.log" 2>&1 || die "nxc stop (vm-ramdisk) failed"
      else
        for p in "${vms[@]}"; do stop_pid "$p"; done
      fi
    done
  done
done

AVAIL=$(awk '/^MemAvailable:/ {print $2 * 1024}' /proc/meminfo)
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
stat_of() { # FLAVOUR N COLUMN: median min max
  local v; v=$(printf '%s\n' "${ROWS[@]}" | awk -v f="$1" -v n="$2" -v c="$3" '$1 == f && $2 == n {print $c}')
  printf '%s %s %s' "$(echo "$v" | median)" "$(echo "$v" | sort -g | head -1)" "$(echo "$v" | sort -g | tail -1)"
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
{
  echo "# Benchmark: pxe and pxe-nfs-store beside vm-ramdisk (bench/pxe.sh)"
  echo
  echo "- Date: $(date -u +%Y-%m-%d), $(( $(date +%s) - T0 )) s in all"
  echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); QEMU under TCG"
  echo "- nxc: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown); composition: compositions/webserver (server, and N - 1 clients)"
  echo "- The site: a bridge in a network namespace, dnsmasq as DHCP, VMs with no kernel and no disk booting from"
  echo "  iPXE ($MEMORY MiB each, as vm-ramdisk's); pxe-nfs-store's store: one VM (2560 MiB) booted with pxe"
  echo "- Each figure: median (min-max) of $RUNS runs"
  echo
  echo "| flavour | N nodes | power-on until every node answers SSH (s) | bytes each node fetched (MiB) | RAM used on a node (MiB) | QEMU's RSS here, per VM (MiB) | VMs of that RSS in this machine's available RAM |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for n in 1 3; do
    for f in vm-ramdisk pxe pxe-nfs-store; do
      read -r s smin smax <<<"$(stat_of "$f" "$n" 3)"
      read -r b _ _ <<<"$(stat_of "$f" "$n" 4)"
      read -r m mmin mmax <<<"$(stat_of "$f" "$n" 5)"
      read -r r rmin rmax <<<"$(stat_of "$f" "$n" 6)"
      printf '| %s | %d | %.1f (%.1f-%.1f) | %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %d |\n' "$f" "$n" "$s" "$smin" "$smax" "$(mib "$b")" \
        "$(mib "$m")" "$(mib "$mmin")" "$(mib "$mmax")" "$(mib "$r")" "$(mib "$rmin")" "$(mib "$rmax")" \
        "$(awk -v a="$AVAIL" -v r="$r" 'BEGIN {print (r > 0) ? int(a / r) : 0}')"
    done
  done
  echo
  echo "Bytes fetched: pxe's are nxc's HTTP server's count for the machine (iPXE script, kernel, initrd, document);"
  echo "vm-ramdisk's are the kernel and initrd QEMU loads from this machine's disk. pxe-nfs-store's machines then read"
  echo "from the store over NFS only what they open. RAM used on a node: \`free\`'s total minus available, the largest"
  echo "over the nodes. The last column divides this machine's available RAM ($(mib "$AVAIL") MiB at the end) by the"
  echo "median RSS: how many such VMs fit by memory; under TCG on $(nproc) cores, CPU is the other limit (boots slow down"
  echo "as VMs are added), not measured here."
  echo
  echo "Goals (issue 15): per-node transfer <= 15% of g5k-ramdisk's (whose bundle is pxe's kernel and initrd),"
  echo "node RAM <= 40%, twice as many VMs at once."
  read -r pb _ _ <<<"$(stat_of pxe 3 4)"; read -r nb _ _ <<<"$(stat_of pxe-nfs-store 3 4)"
  read -r pm _ _ <<<"$(stat_of pxe 3 5)"; read -r nm _ _ <<<"$(stat_of pxe-nfs-store 3 5)"
  read -r pr _ _ <<<"$(stat_of pxe 3 6)"; read -r nr _ _ <<<"$(stat_of pxe-nfs-store 3 6)"
  awk -v pb="$pb" -v nb="$nb" -v pm="$pm" -v nm="$nm" -v pr="$pr" -v nr="$nr" 'BEGIN {
    printf "Measured (N = 3, pxe-nfs-store against pxe): transfer %.1f%%, node RAM %.1f%%, VMs by RAM %.2fx.\n", 100 * nb / pb, 100 * nm / pm, pr / nr
    printf "By the RAM the nodes use, %.2fx as many fit; each QEMU holds %.0f-%.0f MiB more than its node uses, the same for\n", pm / nm, nr - nm, pr - pm
    printf "both flavours (QEMU itself, its 128 MiB TCG translation cache, memory the guest touched while booting), which\n"
    printf "brings the ratio of VMs down to the one above under TCG (KVM has no translation cache).\n" }'
  echo "A PXE machine always fetches the kernel ($(mib "$(size pxe kernel)") MiB of the transfer); the rest is pxe-nfs-store's"
  echo "initrd.base ($(mib "$(size pxe-nfs-store initrd.base)") MiB: busybox, NFS and overlay drivers, the composition's files) and its own NIC's"
  echo "segment (here virtio_net, $(mib "$(size pxe-nfs-store nic-virtio_net.cpio.zst)") MiB), chosen by nxc's server from the PCI IDs iPXE reports;"
  echo "the initrd with every NIC driver of the flavour (kexec, pixiecore) is $(mib "$(size pxe-nfs-store initrd)") MiB."
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
say "wrote $OUT"
