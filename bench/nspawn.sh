#!/usr/bin/env bash
# bench/nspawn.sh: the nspawn flavour beside vm-ramdisk on the same machine, in one run; writes
# docs/benchmarks-nspawn.md (a complete file, regenerated on every run).
#
#   1. Rebuild after editing one role's file (compositions/webserver's index.html): the system
#      archive comes from the store; only payload.tar and the folder are rewritten.
#   2. `nxc start -f nspawn` of webserver until every node is ready (agent done, nginx active):
#      unpacking the tree, then three containers; beside `nxc start -f vm-ramdisk` (SSH answers).
#   3. `nxc stop`: containers, namespaces, cgroups, the tree.
#
# Each figure is the median of $RUNS runs (default 3); every run is listed. Needs root and
# systemd-container (installed if missing). Every deployment it starts is stopped with `nxc stop`.
#
# Environment: NXC_BIN (default .build/release/nxc), NXC_STORE (default: nxc's, shared, so builds
# are warm), RUNS, NSPAWN_BENCH_OUT (default docs/benchmarks-nspawn.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
RUNS=${RUNS:-3}
OUT=${NSPAWN_BENCH_OUT:-$REPO/docs/benchmarks-nspawn.md}
say() { printf '[nspawn-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
[ "$(id -u)" = 0 ] || { say "run as root"; exit 1; }
[ -x "$NXC" ] || { say "$NXC not found; run \`make build\`"; exit 1; }
for p in systemd-container libarchive-tools; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q "ok installed" && continue
  say "installing $p"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $p >/dev/null
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nxc-nspawnbench.XXXXXX")
P=$WORK/p
mkdir -p "$P"
cp -r "$REPO/compositions/webserver" "$P/webserver"
nxc() { HOME=$P "$NXC" "$@" --project "$P"; }
cleanup() {
  local rc=$?
  for f in nspawn vm-ramdisk; do
    [ -e "$P/.nxc/run/webserver.$f/state.json" ] && nxc stop -f $f --composition webserver >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM
# T LOG CMD…: runs CMD, prints its wall time in seconds.
T() { local log=$1; shift; local t0 t1; t0=$(now); "$@" >"$log" 2>&1 || { say "failed: $*"; tail -20 "$log" >&2; return 1; }; t1=$(now); python3 -c "print(f'{$t1-$t0:.2f}')"; }

say "warm-up: builds (nspawn, vm-ramdisk)"
nxc build -f nspawn "$P/webserver" >"$WORK/warm-nspawn.log" 2>&1
nxc build -f vm-ramdisk "$P/webserver" >"$WORK/warm-vm.log" 2>&1

EDIT=(); START=(); UNPACK=(); STOP=(); VM=()
for i in $(seq 1 "$RUNS"); do
  printf 'edited for run %s\n' "$i" > "$P/webserver/index.html"
  EDIT+=("$(T "$WORK/edit-$i.log" nxc build -f nspawn "$P/webserver")")
  START+=("$(T "$WORK/start-$i.log" nxc start -f nspawn "$P/webserver")")
  UNPACK+=("$(sed -n 's/.*tree: unpacked into .* in \([0-9.]*\) s.*/\1/p' "$WORK/start-$i.log" | head -1)")
  page=$(HOME=$P "$NXC" exec --project "$P" client1 -- curl -sf http://server/)
  [ "$page" = "edited for run $i" ] || { say "run $i: client1 got '$page'"; exit 1; }
  STOP+=("$(T "$WORK/stop-$i.log" nxc stop -f nspawn --composition webserver)")
  nxc build -f vm-ramdisk "$P/webserver" >"$WORK/vm-build-$i.log" 2>&1
  VM+=("$(T "$WORK/vm-start-$i.log" nxc start -f vm-ramdisk "$P/webserver")")
  nxc stop -f vm-ramdisk --composition webserver >/dev/null 2>&1
  say "run $i: rebuild ${EDIT[-1]} s, nspawn start ${START[-1]} s (unpack ${UNPACK[-1]} s), stop ${STOP[-1]} s, vm-ramdisk start ${VM[-1]} s"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_edit=$(median "${EDIT[@]}"); m_start=$(median "${START[@]}"); m_unpack=$(median "${UNPACK[@]}")
m_stop=$(median "${STOP[@]}"); m_vm=$(median "${VM[@]}")
ratio=$(python3 -c "print(f'{$m_start/$m_vm:.2f}')")
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
{
  echo "# Benchmarks: the nspawn flavour"
  echo
  echo "\`bench/nspawn.sh\` (run by \`make bench\`), $(date -u +%Y-%m-%d) on this machine: $cpu, $(nproc) cores,"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), $(systemd-nspawn --version | head -1). compositions/webserver (3 nodes);"
  echo "median of $RUNS runs, each run listed. The vm-ramdisk figure is the same composition started in"
  echo "the same run (QEMU under TCG here: no KVM), for the ratio."
  echo
  echo "| step | median | runs |"
  echo "|---|---|---|"
  echo "| rebuild after editing index.html (system archive from the store) | ${m_edit} s | ${EDIT[*]} |"
  echo "| \`nxc start -f nspawn\`: 3 nodes ready (agent done, nginx active) | ${m_start} s | ${START[*]} |"
  echo "| of which unpacking the tree | ${m_unpack} s | ${UNPACK[*]} |"
  echo "| \`nxc stop\` (containers, namespaces, cgroups, tree) | ${m_stop} s | ${STOP[*]} |"
  echo "| \`nxc start -f vm-ramdisk\`: 3 VMs answer SSH | ${m_vm} s | ${VM[*]} |"
  echo
  echo "nspawn start / vm-ramdisk start: **${ratio}**. Each run checks that client1 fetches the edited page."
} > "$OUT"
say "wrote $OUT"
