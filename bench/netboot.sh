#!/usr/bin/env bash
# bench/netboot.sh: nfs-store beside g5k-ramdisk on the same composition (compositions/webserver),
# with QEMU VMs as the reserved hosts, as the g5k-ramdisk end-to-end test has them (issue 15).
# Writes docs/benchmarks-netboot.md.
#
# Each run, for N = 1 and 3 nodes: N + 1 fresh stock VMs (Tests/EndToEndTests/Fixtures/stockhost:
# N hosts and the store host, which runs the kernel NFS server), then both flavours on the same
# hosts, one after the other (the order alternates between runs; the second kexecs from the first's
# nodes). Per flavour: the start's time until every node answers SSH as itself, the bytes each node
# received (the start report), the RAM used on each node after boot (`free`: total - available),
# and for nfs-store what the store host received once.
#
# Environment: NXC_BIN, NXC_STORE as bench/scale.sh; RUNS (default 3); NETBOOT_SIZES (default "1 3");
# NETBOOT_OUT (default docs/benchmarks-netboot.md).
# Safety: only QEMU guests are kexec'd; every VM is stopped with `nxc stop` (by the PIDs it recorded).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
STORE=${NXC_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxc}
RUNS=${RUNS:-3}
SIZES=${NETBOOT_SIZES:-1 3}
OUT=${NETBOOT_OUT:-$REPO/docs/benchmarks-netboot.md}
STOCK=$REPO/Tests/EndToEndTests/Fixtures/stockhost
WEB=$REPO/compositions/webserver
PY=/usr/bin/python3
T0=$(date +%s)

say() { printf '[netboot %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
[ -x "$NXC" ] || die "$NXC not found; run \`make build\`"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "RUNS must be a positive number"
for n in $SIZES; do [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 4 ] || die "NETBOOT_SIZES: $n is not 1 to 4"; done

WORK=$(mktemp -d /tmp/nxc-netboot.XXXXXX)
P=$WORK/p; L=$WORK/logs
mkdir -p "$P" "$L"
STOCK_UP=0
nxc_() { local sub=$1; shift; HOME=$P NXC_STORE=$STORE timeout 1800 "$NXC" "$sub" --project "$P" "$@"; }
stock_down() {
  [ "$STOCK_UP" = 1 ] || return 0
  for f in g5k-ramdisk nfs-store; do nxc_ stop -f "$f" --composition webserver >>"$L/stock.log" 2>&1 || true; done
  nxc_ stop -f vm-ramdisk --composition stockhost >>"$L/stock.log" 2>&1 || say "nxc stop of the stock hosts failed (see $L/stock.log)"
  STOCK_UP=0
}
cleanup() { local rc=$?; set +e; stock_down; rm -rf "$WORK"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM
on() { # PORT COMMAND: as root on a stock VM or a node, with the project's key
  ssh -i "$P/.nxc/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=20 -p "$1" root@127.0.0.1 "$2"
}

say "building the stock hosts (vm-ramdisk) and webserver for g5k-ramdisk and nfs-store"
nxc_ build -f vm-ramdisk "$STOCK" >"$L/build.log" 2>&1 || { tail -20 "$L/build.log" >&2; die "build of stockhost failed"; }
for f in g5k-ramdisk nfs-store; do
  nxc_ build -f "$f" "$WEB" >>"$L/build.log" 2>&1 || { tail -20 "$L/build.log" >&2; die "build of webserver ($f) failed"; }
done
size() { stat -c %s "$P/build/webserver/$1/$2"; }
TREE=$(size nfs-store system.tar.zst)

# Updating (once, on the last run's nfs-store nodes): webserver with one more package is a new tree;
# the store host gets it beside the old one, and `nxc start --reuse` moves the running nodes to it
# (a kexec of their small bundle). UPDATE holds what was measured.
UPDATE=()
# A failed update is recorded in the results, not fatal: the runs before it still count.
ufail() { UPDATE+=("FAILED: $*"); say "update failed: $*"; }
update() { # N STORE_PORT
  local n=$1 sport=$2 web2=$WORK/web2 old new t0 secs bytes trees
  rm -rf "$web2"; cp -r "$WEB" "$web2"
  sed -i 's/^packages: \[curl\]$/packages: [curl, tree]/' "$web2/composition.yaml"
  grep -q 'packages: \[curl, tree\]' "$web2/composition.yaml" || { ufail "cannot add a package to $web2/composition.yaml"; return 0; }
  old=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["tree"])' "$P/build/webserver/nfs-store/netroot.json")
  t0=$(now)
  nxc_ build -f nfs-store "$web2" >"$L/update-build.log" 2>&1 || { tail -20 "$L/update-build.log" >&2; ufail "the rebuild failed"; return 0; }
  UPDATE+=("rebuild with one more package (tree): $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}') s")
  new=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["tree"])' "$P/build/webserver/nfs-store/netroot.json")
  [ "$new" != "$old" ] || { ufail "the rebuild made the same tree $old"; return 0; }
  t0=$(now)
  nxc_ start -f nfs-store -m "$WORK/machines" --reuse -r "client=$((n - 1))" --timeout 600 --store-host "root@127.0.0.1:$sport" "$web2" \
    >"$L/update-start.log" 2>&1 || { tail -30 "$L/update-start.log" >&2; ufail "nxc start --reuse failed"; return 0; }
  secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
  bytes=$($PY -c 'import json,sys
b = [h["bytesReceived"] for h in json.load(open(sys.argv[1]))["hosts"] if h["state"] == "up"]
print(max(b) if b else 0)' "$P/deploy/webserver.nfs-store.report.json")
  for node in $($PY -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["order"]))' "$P/deploy/webserver.nfs-store.json"); do
    nxc_ exec "$node" -- sh -c "grep -q 'nxc.root=nfs://[^ ]*/$new' /proc/cmdline && command -v tree" >/dev/null 2>&1 \
      || { ufail "$node is not on the new tree $new with its package"; return 0; }
  done
  trees=$(on "$sport" "ls -d /srv/nxc/store/$old /srv/nxc/store/$new | wc -l")
  [ "$trees" = 2 ] || { ufail "the store host does not hold both trees"; return 0; }
  UPDATE+=("nxc start --reuse onto the new tree, $n node(s): $secs s until every node answers SSH on it, $(awk -v b="$bytes" 'BEGIN {printf "%.2f", b / 1048576}') MiB sent to each node at most; the store host holds both trees")
  UPDATE+=("$(grep -o 'store host, got the system tree [0-9a-f]* ([0-9]* MiB) in [0-9.]* s' "$L/update-start.log" | head -1 || true)")
  UPDATE+=("$(grep -m1 -o 'bundle: .*' "$L/update-start.log" || true)")
  say "update: ${UPDATE[*]}"
}

ROWS=()
for k in $(seq 1 "$RUNS"); do
  for n in $SIZES; do
    say "run $k, N=$n: $((n + 1)) fresh stock VMs"
    STOCK_UP=1
    nxc_ start -f vm-ramdisk -r "host=$n" -r store=1 --timeout 900 "$STOCK" >"$L/stock-$k-$n.log" 2>&1 \
      || { tail -20 "$L/stock-$k-$n.log" >&2; die "the stock hosts did not start"; }
    $PY -c 'import json,sys
d = json.load(open(sys.argv[1]))
print("".join("root@127.0.0.1:%d\n" % d["nodes"][x]["ssh"]["port"] for x in d["order"] if d["nodes"][x]["role"] == "host"), end="")' \
      "$P/deploy/stockhost.vm-ramdisk.json" >"$WORK/machines"
    sport=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"]["store"]["ssh"]["port"])' "$P/deploy/stockhost.vm-ramdisk.json")
    on "$sport" 'mkdir -p /srv/nxc && mount -t tmpfs -o mode=0700 nxc-store /srv/nxc' || die "cannot mount the store's tmpfs"
    order="g5k-ramdisk nfs-store"; [ $((k % 2)) = 0 ] && order="nfs-store g5k-ramdisk"
    for f in $order; do
      extra=(); [ "$f" = nfs-store ] && extra=(--store-host "root@127.0.0.1:$sport")
      log=$L/run-$k-$n-$f.log
      t0=$(now)
      rc=0; nxc_ start -f "$f" -m "$WORK/machines" -r "client=$((n - 1))" --timeout 600 "${extra[@]}" "$WEB" >"$log" 2>&1 || rc=$?
      secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
      [ "$rc" = 0 ] || { tail -30 "$log" >&2; die "run $k N=$n: nxc start -f $f exited $rc"; }
      # Per node: bytes received (the report), RAM used after boot.
      bytes=$($PY -c 'import json,sys
b = [h["bytesReceived"] for h in json.load(open(sys.argv[1]))["hosts"] if h["state"] == "up"]
print(max(b) if b else 0)' "$P/deploy/webserver.$f.report.json")
      ram=0
      for node in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["order"]))' "$P/deploy/webserver.$f.json"); do
        port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][sys.argv[2]]["ssh"]["port"])' "$P/deploy/webserver.$f.json" "$node")
        used=$(on "$port" "free -b | awk '/^Mem:/ {print \$2 - \$7}'") || die "run $k N=$n $f: free on $node"
        [ "$used" -gt "$ram" ] && ram=$used
      done
      store=$(grep -o 'store host, got the system tree [0-9a-f]* ([0-9]* MiB) in [0-9.]* s' "$log" | head -1 || true)
      page=$(nxc_ exec server -- curl -sf http://server/ 2>/dev/null || true)
      [ "$page" = "hello from nxc" ] || die "run $k N=$n $f: the page: $page"
      say "run $k N=$n $f: up in $secs s; per node: $bytes bytes received, $((ram >> 20)) MiB used${store:+; $store}"
      tree=$(echo "$store" | sed -n 's/.* in \([0-9.]*\) s$/\1/p'); tree=${tree:-0}
      ROWS+=("$f $n $secs $bytes $ram $tree")
      if [ "$f" = nfs-store ] && [ "$k" = "$RUNS" ] && [ "$n" = "${SIZES##* }" ]; then update "$n" "$sport"; fi
    done
    stock_down
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
stat_of() { # FLAVOUR N COLUMN: median (min-max)
  local v; v=$(printf '%s\n' "${ROWS[@]}" | awk -v f="$1" -v n="$2" -v c="$3" '$1 == f && $2 == n {print $c}')
  printf '%s %s %s' "$(echo "$v" | median)" "$(echo "$v" | sort -g | head -1)" "$(echo "$v" | sort -g | tail -1)"
}
{
  echo "# Benchmark: nfs-store beside g5k-ramdisk (bench/netboot.sh)"
  echo
  echo "- Date: $(date -u +%Y-%m-%d), $(( $(date +%s) - T0 )) s in all"
  echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); QEMU under TCG"
  echo "- nxc: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown); composition: compositions/webserver (server, and N - 1 clients)"
  echo "- Hosts: stock VMs (vm-ramdisk of Tests/EndToEndTests/Fixtures/stockhost, 1536 MiB each) and one store VM running"
  echo "  nfs-kernel-server (its trees in a tmpfs); both flavours on the same fresh VMs in each run, the order alternating"
  echo "- Each figure: median (min-max) of $RUNS runs"
  echo
  echo "| flavour | N nodes | start until every node answers SSH (s) | of it, the store host getting the tree (s) | bytes each node received (MiB) | RAM used on a node after boot (MiB) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for n in $SIZES; do
    for f in g5k-ramdisk nfs-store; do
      read -r s smin smax <<<"$(stat_of "$f" "$n" 3)"
      read -r b bmin bmax <<<"$(stat_of "$f" "$n" 4)"
      read -r m mmin mmax <<<"$(stat_of "$f" "$n" 5)"
      read -r t _ _ <<<"$(stat_of "$f" "$n" 6)"
      printf '| %s | %d | %.1f (%.1f-%.1f) | %.1f | %.1f (%.1f-%.1f) | %.0f (%.0f-%.0f) |\n' "$f" "$n" "$s" "$smin" "$smax" "$t" \
        "$(awk -v b="$b" 'BEGIN {print b / 1048576}')" "$(awk -v b="$bmin" 'BEGIN {print b / 1048576}')" "$(awk -v b="$bmax" 'BEGIN {print b / 1048576}')" "$(awk -v m="$m" 'BEGIN {print m / 1048576}')" \
        "$(awk -v m="$mmin" 'BEGIN {print m / 1048576}')" "$(awk -v m="$mmax" 'BEGIN {print m / 1048576}')"
    done
  done
  echo
  echo "The store host received the system tree once per run: $(awk -v t="$TREE" 'BEGIN {printf "%.1f", t / 1048576}') MiB (system.tar.zst), unpacked"
  echo "under /srv/nxc/store; nfs-store nodes then read from it only what they open."
  echo
  echo "Bytes each node received: the largest over the run's nodes, from the start report (median, min-max). Both flavours send the"
  echo "kernel ($(awk -v k="$(size nfs-store kernel)" 'BEGIN {printf "%.1f", k / 1048576}') MiB) to a host that lacks it; a host that kexec'd into the same kernel before (the"
  echo "second flavour of a run) is sent only the initrd, so the figure varies with the order."
  echo "The nfs-store start includes giving the store host its tree (the column before; once per tree, not per node)"
  echo "and, here, every node reading its system over NFS from one VM under TCG; on hardware the store is a real host."
  echo
  echo "Goals (issue 15): per-node transfer <= 15% of g5k-ramdisk's, node RAM <= 40%. The RAM figure is"
  echo "\`free\`'s total minus available, the largest over the run's nodes: a g5k-ramdisk node holds its whole system"
  echo "in RAM (the unpacked initrd) plus the initrd it keeps for --reuse; an nfs-store node holds its tmpfs layer,"
  echo "its small initrd and the page cache of what it read over NFS. The most VMs this machine boots at once with each"
  echo "flavour: docs/benchmarks-pxe.md (the stock VMs that play the hosts here have a fixed size)."
  echo
  echo "Updating, on the last run's nfs-store nodes (the store host keeps the old tree, so nodes still on it are not"
  echo "disturbed; --reuse kexecs each node into its own kernel and small initrd over the new tree):"
  echo
  for u in "${UPDATE[@]}"; do [ -n "$u" ] && echo "- $u"; done
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
say "wrote $OUT"
