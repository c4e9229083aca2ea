#!/usr/bin/env bash
# bench/faults-vm.sh: a reserved host that never comes back after its kexec (issue 14), measured
# with QEMU VMs as the hosts, as the g5k-ramdisk end-to-end test has them. Appends a section to
# docs/benchmarks-scale.md (run bench/scale.sh first; `make bench` does).
#
# Three stock VMs (Tests/EndToEndTests/Fixtures/stockhost: Debian, sshd, kexec-tools) are the
# machine file: server and client of compositions/webserver, and one spare. During
# `nxc start -f g5k-ramdisk`, once the client's host has loaded the kernel and started its kexec,
# its QEMU is killed (by its PID, from the stock deployment's state.json): the host is gone for
# good. Expected each time: the boot phase gives up at --timeout, the report names the host, the
# phase (boot) and the class, the spare takes the client's node, is kexec'd with the document made
# again, the server gets that document (nxc-agent update), and the start exits 0; the client
# fetches the server's page and the server resolves the client at the spare's address.
#
# Environment: NXC_BIN, NXC_STORE as bench/scale.sh; FAULT_RUNS (default 3); FAULT_TIMEOUT (the
# start's --timeout, default 150 s); FAULTS_OUT (default docs/benchmarks-scale.md).
# Safety: only QEMU guests are kexec'd; every VM is stopped with `nxc stop` or by its own PID.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
STORE=${NXC_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxc}
RUNS=${FAULT_RUNS:-3}
TIMEOUT=${FAULT_TIMEOUT:-150}
OUT=${FAULTS_OUT:-$REPO/docs/benchmarks-scale.md}
STOCK=$REPO/Tests/EndToEndTests/Fixtures/stockhost
WEB=$REPO/compositions/webserver
PY=/usr/bin/python3

say() { printf '[faults-vm %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
[ -x "$NXC" ] || die "$NXC not found; run \`make build\`"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "FAULT_RUNS must be a positive number"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -ge 60 ] || die "FAULT_TIMEOUT must be 60 s or more"

WORK=$(mktemp -d /tmp/nxc-faults-vm.XXXXXX)
P=$WORK/p; L=$WORK/logs
mkdir -p "$P" "$L"
STOCK_UP=0
nxc_() { local sub=$1; shift; HOME=$P NXC_STORE=$STORE timeout 1800 "$NXC" "$sub" --project "$P" "$@"; }
stock_state() { echo "$P/.nxc/run/stockhost.vm-ramdisk/state.json"; }
stock_down() {
  [ "$STOCK_UP" = 1 ] || return 0
  nxc_ stop -f g5k-ramdisk --composition webserver >>"$L/stock.log" 2>&1 || true
  nxc_ stop -f vm-ramdisk --composition stockhost >>"$L/stock.log" 2>&1 || say "nxc stop of the stock hosts failed (see $L/stock.log)"
  STOCK_UP=0
}
cleanup() { local rc=$?; set +e; stock_down; rm -rf "$WORK"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building the stock hosts (vm-ramdisk) and the webserver bundle (g5k-ramdisk)"
nxc_ build -f vm-ramdisk "$STOCK" >"$L/build.log" 2>&1 || { tail -20 "$L/build.log" >&2; die "build of stockhost failed"; }
nxc_ build -f g5k-ramdisk "$WEB" >>"$L/build.log" 2>&1 || { tail -20 "$L/build.log" >&2; die "build of webserver failed"; }

ROWS=()
for k in $(seq 1 "$RUNS"); do
  say "run $k: three fresh stock VMs"
  STOCK_UP=1
  nxc_ start -f vm-ramdisk -r host=3 -r store=0 --timeout 600 "$STOCK" >"$L/stock-$k.log" 2>&1 || { tail -20 "$L/stock-$k.log" >&2; die "the stock hosts did not start"; }
  $PY -c 'import json,sys
d = json.load(open(sys.argv[1]))
print("".join("root@127.0.0.1:%d\n" % d["nodes"][n]["ssh"]["port"] for n in d["order"]), end="")' "$P/deploy/stockhost.vm-ramdisk.json" >"$WORK/machines"
  victim=$(sed -n 2p "$WORK/machines"); spare=$(sed -n 3p "$WORK/machines")
  # The QEMU of host2 (the client's host), recorded by the stock start.
  qpid=$($PY -c 'import json,sys; print(next(p["pid"] for p in json.load(open(sys.argv[1]))["processes"] if p["name"] == "qemu" and p.get("node") == "host2"))' "$(stock_state)")
  log=$L/run-$k.log
  t0=$(now)
  nxc_ start -f g5k-ramdisk -m "$WORK/machines" -r client=1 --timeout "$TIMEOUT" "$WEB" >"$log" 2>&1 &
  nxc_pid=$!
  killed=""
  for _ in $(seq 1 1200); do
    if grep -q "^.*$victim: nxc: client loaded; kexec in" "$log" 2>/dev/null; then
      sleep 3
      kill -KILL "$qpid" && killed=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.0f", b - a}')
      break
    fi
    kill -0 "$nxc_pid" 2>/dev/null || break
    sleep 0.2
  done
  rc=0; wait "$nxc_pid" || rc=$?
  secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
  [ -n "$killed" ] || { tail -30 "$log" >&2; die "run $k: the client's host never started its kexec"; }
  [ "$rc" = 0 ] || { tail -30 "$log" >&2; die "run $k: nxc start exited $rc"; }
  what=$($PY - "$P/deploy/webserver.g5k-ramdisk.report.json" "$victim" "$spare" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); hosts = {h["host"]: h for h in r["hosts"]}
v, s = hosts[sys.argv[2]], hosts[sys.argv[3]]
failed = next(p["phase"] for p in v["phases"] if not p["ok"])
assert v["state"] == "replaced" and v["replacedBy"] == sys.argv[3] and s["replaces"] == sys.argv[2] and s["state"] == "up", (v, s)
print("%s: %s in %s (%s), replaced by the spare, which is up" % (v["node"], v["state"], failed, v["errorClass"]))
PY
) || die "run $k: the report does not say what was expected"
  # The spare answers as client, fetches the page; the server resolves client at the spare's address.
  page=$(nxc_ exec client -- curl -sf http://server/ 2>&1 || true)
  [ "$page" = "hello from nxc" ] || die "run $k: client's page: $page"
  want=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"]["client"]["address"])' "$P/deploy/webserver.g5k-ramdisk.json")
  seen=$(nxc_ exec server -- getent hosts client | awk '{print $1}')
  [ "$seen" = "$want" ] || die "run $k: server resolves client at '$seen', the final document says $want"
  updated=$(grep -o 'the final document sent to [0-9]* node(s)[^;]*' "$log" | head -1)
  say "run $k: exit 0 in $secs s (host killed at ${killed} s); $what; $updated"
  ROWS+=("$secs|$killed|$what; $updated")
  stock_down
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
secs=$(printf '%s\n' "${ROWS[@]}" | cut -d'|' -f1)
{
  echo
  echo "## A host that never comes back after its kexec (bench/faults-vm.sh)"
  echo
  echo "- Date: $(date -u +%Y-%m-%d); nxc $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown); QEMU under TCG, three stock VMs as the hosts"
  echo "- Each run: webserver (server + client) on the first two, the third a spare; the client's host is killed 3 s after"
  echo "  its kexec starts; \`--timeout $TIMEOUT\`."
  echo
  echo "| runs | start, exit 0 (s): median (range) | every run |"
  echo "| ---: | ---: | --- |"
  printf '| %d | %.1f (%.1f-%.1f) | %s |\n' "${#ROWS[@]}" "$(echo "$secs" | median)" "$(echo "$secs" | sort -g | head -1)" \
    "$(echo "$secs" | sort -g | tail -1)" "$(printf '%s\n' "${ROWS[@]}" | cut -d'|' -f3 | sort | uniq -c | awk '{c=$1; $1=""; printf "%s%dx%s", (NR>1?"; ":""), c, $0}')"
  echo
  echo "The time is the boot phase's timeout (the host is gone; nothing tells it apart from a slow boot), then the"
  echo "spare: checked, given the bundle over SSH, kexec'd with the document made again, up. The server, up since"
  echo "the first kexec, gets the final document over SSH (\`nxc-agent update\`) and resolves client at the spare's"
  echo "address. \`--resume\` is for the case with no spare: the g5k-ramdisk end-to-end test redoes a node whose"
  echo "kexec failed, once its host works again."
} >>"$OUT"
say "appended to $OUT"
