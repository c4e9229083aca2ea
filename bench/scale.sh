#!/usr/bin/env bash
# bench/scale.sh: what the frontend sends to distribute a g5k-ramdisk bundle to N testbed hosts,
# and how long it takes, on a simulated testbed (issue 14). Writes docs/benchmarks-scale.md.
#
# The testbed: network namespaces on this machine. One namespace holds a bridge (the switch); the
# frontend (where nxc runs) and each host have a namespace of their own, joined to it by a veth.
# Every link is shaped with tc (token bucket, $SCALE_RATE each way: the frontend's uplink, each
# host's downlink and uplink), so that bandwidth, not this machine's CPU, bounds a transfer, as on
# a testbed. Each host is an sshd of this machine in its namespace, in a mount namespace of its
# own with private tmpfs on /var/lib/nxc (where nxc stages the bundle) and /tmp.
#
# For N in $SCALE_SIZES, a cold `nxc start -f g5k-ramdisk --dry-run` (fresh sshds, nothing staged;
# stops before the kexec) in each mode:
#   push    the hosts do not see the frontend's files (a tmpfs hides the project), and --no-relay:
#           nxc pushes the bundle to each host over SSH, as before issue 14.
#   relay   the hosts do not see the frontend's files: they pass the bundle on to each other in a
#           chain (TCP between hosts, perl from perl-base), fed once over the first host's SSH.
#   shared  the hosts see the project's build folder at its own path (the Grid'5000 homes over
#           NFS): each host copies the bundle from there and nxc checks its SHA-256. Here that
#           folder is this machine's own disk, not NFS (this kernel has no nfsd): the copies cost
#           no network, where on Grid'5000 they load the NFS server, not the frontend.
# Measured: the frontend's egress (tx bytes of its veth) divided by the bundle's size (goal <= 1.1
# for every N), and the time of the dry run (goal: N=30 <= 1.5 x N=1).
#
# Environment:
#   NXC_BIN      nxc binary (default: .build/release/nxc; run `make build`)
#   NXC_STORE    store (default: $XDG_CACHE_HOME/nxc or ~/.cache/nxc; builds are reused)
#   SCALE_SIZES  host counts (default "1 10 30 60"; at most 250)
#   SCALE_MODES  modes (default "push relay shared")
#   SCALE_RATE   tc rate of every link (default 1gbit)
#   RUNS         runs per measurement (default 1)
#   SCALE_OUT    report file (default: docs/benchmarks-scale.md of this repository)
#   SCALE_FAULTS       faults to inject (default "unreachable relay-killed resume"; "" for none), each on
#                      SCALE_FAULT_N hosts (default 10), SCALE_FAULT_RUNS times (default 3):
#     unreachable   one host's link goes down before the start (SSH times out); one more host
#                   in the machine file is a spare and must take its node
#     relay-killed  the third host's relay is killed (SIGKILL, its process group) once 16 MiB of
#                   the stream have reached it; the hosts it cut short must get the bundle all the same
#     resume        as unreachable with no spare: the dry run fails naming the host; its link comes
#                   back and `--resume --dry-run` must redo that host alone
#
# Runs as root. Safety: nothing here runs kexec: the sessions' PATH starts with a `kexec` that
# refuses, every sshd runs without CAP_SYS_BOOT in its bounding set (no kexec_load, no reboot,
# whatever it runs), and a dry run never calls kexec. Traffic stays in the namespaces made here
# (no route leaves them). Every sshd is stopped by its PID; every namespace is deleted.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$REPO/bench/testbed-sshd.sh"
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
STORE=${NXC_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxc}
SIZES=${SCALE_SIZES:-1 10 30 60}
MODES=${SCALE_MODES:-push relay shared}
RATE=${SCALE_RATE:-1gbit}
RUNS=${RUNS:-1}
OUT=${SCALE_OUT:-$REPO/docs/benchmarks-scale.md}
WEB=$REPO/compositions/webserver
NS=nxcs                # namespace / interface prefix
NET=10.202             # frontend 10.202.0.1, host I 10.202.1.I, all /16

say() { printf '[scale %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, tc, sshd): sudo bash bench/scale.sh"
[ -x "$NXC" ] || die "$NXC not found; run \`make build\` or set NXC_BIN"
for t in ip tc unshare nsenter setpriv ssh ssh-keygen; do command -v "$t" >/dev/null || die "$t is missing (make deps)"; done
MAX=0; for n in $SIZES; do [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 250 ] || die "SCALE_SIZES: $n is not 1..250"; [ "$n" -gt $MAX ] && MAX=$n; done
for m in $MODES; do case $m in push|relay|shared) ;; *) die "SCALE_MODES: unknown mode $m";; esac; done
FAULTS=${SCALE_FAULTS-unreachable relay-killed resume}
FAULT_N=${SCALE_FAULT_N:-10}
FAULT_RUNS=${SCALE_FAULT_RUNS:-3}
for f in $FAULTS; do case $f in unreachable|relay-killed|resume) ;; *) die "SCALE_FAULTS: unknown fault $f";; esac; done
if [ -n "$FAULTS" ]; then
  [[ "$FAULT_N" =~ ^[0-9]+$ ]] && [ "$FAULT_N" -ge 4 ] && [ "$FAULT_N" -le 249 ] || die "SCALE_FAULT_N: $FAULT_N is not 4..249"
  [ $((FAULT_N + 1)) -gt $MAX ] && MAX=$((FAULT_N + 1))
fi

# sshd (installed, never started as a service: a policy-rc.d refuses it for the install).
if ! dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | grep -q "ok installed"; then
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1; fi
  say "installing openssh-server (its service is not started)"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server; } >/dev/null 2>&1 \
    || { [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get install openssh-server failed"; }
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing"
ip netns list | grep -q "^$NS" && die "network namespaces $NS* exist already (ip netns list): a previous run? remove them first"
ip -4 addr show | grep -q " $NET\." && die "addresses $NET.* exist already on this machine"

# Not under /tmp: every host gets a private /tmp; the project must stay visible in shared mode.
WORK=$(mktemp -d /var/tmp/nxc-scale.XXXXXX)
P=$WORK/p; L=$WORK/logs; SD=$WORK/sshd
mkdir -p "$P" "$L" "$SD/bin"
declare -A SSHD_PID=()
RUN_SSHD_CREATED=0
T0=$(date +%s)

sshd_stop() { # I: by its PID
  local i=$1 pid=${SSHD_PID[$1]:-} t=0
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ $t -lt 50 ]; do sleep 0.1; t=$((t + 1)); done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  wait "$pid" 2>/dev/null || true
  unset "SSHD_PID[$i]"
}

cleanup() {
  local rc=$? i
  set +e
  for i in "${!SSHD_PID[@]}"; do sshd_stop "$i"; done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$NS"); do
    [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && say "warning: processes left in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
    ip netns del "$ns"
  done
  [ "$RUN_SSHD_CREATED" = 1 ] && rmdir /run/sshd 2>/dev/null
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nxc_() { local sub=$1; shift; HOME=$P NXC_STORE=$STORE timeout 1800 "$NXC" "$sub" --project "$P" "$@"; }

say "building the webserver bundle (g5k-ramdisk; the store makes it quick when warm)"
nxc_ build -f g5k-ramdisk "$WEB" >"$L/build.log" 2>&1 || { tail -20 "$L/build.log" >&2; die "nxc build failed"; }
B=$P/build/webserver/g5k-ramdisk
BUNDLE=$(( $(stat -c %s "$B/kernel") + $(stat -c %s "$B/initrd") + $(stat -c %s "$B/kexec.sh") ))
# nxc's key (made on first use by a start; the hosts must authorize it first).
mkdir -p -m 0700 "$P/.nxc"; [ -f "$P/.nxc/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C nxc-scale -f "$P/.nxc/id_ed25519"

# --- the simulated testbed ---------------------------------------------------------------------------
shape() { # NS DEV: token bucket at RATE on DEV's egress
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$RATE" burst 256kb latency 100ms
}
ip netns add "${NS}sw"
ip -n "${NS}sw" link add br0 type bridge
ip -n "${NS}sw" link set br0 up
ip -n "${NS}sw" link set lo up
ip netns add "${NS}fe"
ip -n "${NS}fe" link set lo up
ip link add "${NS}fe0" type veth peer name "${NS}swfe"
ip link set "${NS}fe0" netns "${NS}fe"; ip link set "${NS}swfe" netns "${NS}sw"
ip -n "${NS}sw" link set "${NS}swfe" master br0 up
ip -n "${NS}fe" addr add "$NET.0.1/16" dev "${NS}fe0"
ip -n "${NS}fe" link set "${NS}fe0" up
shape "${NS}fe" "${NS}fe0"; shape "${NS}sw" "${NS}swfe"
for i in $(seq 1 "$MAX"); do
  h=${NS}h$i
  ip netns add "$h"
  ip -n "$h" link set lo up
  ip link add "${NS}e$i" type veth peer name "${NS}s$i"
  ip link set "${NS}e$i" netns "$h"; ip link set "${NS}s$i" netns "${NS}sw"
  ip -n "${NS}sw" link set "${NS}s$i" master br0 up
  ip -n "$h" addr add "$NET.1.$i/16" dev "${NS}e$i"
  ip -n "$h" link set "${NS}e$i" up
  shape "$h" "${NS}e$i"; shape "${NS}sw" "${NS}s$i"
done

if [ ! -d /run/sshd ]; then mkdir -m 755 /run/sshd; RUN_SSHD_CREATED=1; fi   # sshd's privilege separation folder
mkdir -p -m 0700 /var/lib/nxc   # mount point of each host's private staging tmpfs
ssh-keygen -q -t ed25519 -N "" -C "nxc-scale host" -f "$SD/host_ed25519"
cp "$P/.nxc/id_ed25519.pub" "$SD/authorized_keys"
printf '#!/bin/sh\necho "kexec: refused: this is a simulated testbed host of bench/scale.sh" >&2\nexit 1\n' >"$SD/bin/kexec"
chmod 755 "$SD/bin/kexec"
for i in $(seq 1 "$MAX"); do
  sshd_conf "$NET.1.$i" "$SD" "$i" >"$SD/sshd-$i.conf"
done

sshd_start() { # I MODE: a fresh sshd (empty staging); all modes but shared hide the project from it
  local i=$1 hide=""
  [ "$2" = shared ] || hide=$P
  ip netns exec "${NS}h$i" unshare -m sh -c '
    mount -t tmpfs -o size=512m,mode=1777 tmpfs /tmp && mount -t tmpfs -o size=512m,mode=0700 tmpfs /var/lib/nxc || exit 1
    if [ -n "$1" ]; then mount -t tmpfs -o size=1m,mode=0700 tmpfs "$1" || exit 1; fi
    exec setpriv --bounding-set -sys_boot /usr/sbin/sshd -D -e -f "$0"' "$SD/sshd-$i.conf" "$hide" >>"$L/sshd-$i.log" 2>&1 &
  SSHD_PID[$i]=$!
}
sshd_wait() { # I: its banner answers from the frontend, within 20 s
  local i=$1 t=0
  until ip netns exec "${NS}fe" timeout 3 nc -w 1 "$NET.1.$i" 22 </dev/null 2>/dev/null | grep -q SSH; do
    kill -0 "${SSHD_PID[$i]}" 2>/dev/null || { cat "$L/sshd-$i.log" >&2; die "sshd $i (PID ${SSHD_PID[$i]}) exited"; }
    t=$((t + 1)); [ $t -le 40 ] || die "sshd $i does not answer on $NET.1.$i:22 after 20 s"
    sleep 0.5
  done
}
hosts_restart() { # N MODE
  local i
  for i in "${!SSHD_PID[@]}"; do sshd_stop "$i"; done
  for i in $(seq 1 "$1"); do sshd_start "$i" "$2"; done
  for i in $(seq 1 "$1"); do sshd_wait "$i"; done
}
staged_count() { # N: hosts whose staging folder holds the whole bundle
  local i c=0
  for i in $(seq 1 "$1"); do
    nsenter -t "${SSHD_PID[$i]}" -m sh -c 'cd /var/lib/nxc/bundle 2>/dev/null && [ -f kernel ] && [ -f initrd ] && [ -f kexec.sh ]' && c=$((c + 1))
  done
  echo $c
}
tx() { ip netns exec "${NS}fe" cat "/sys/class/net/${NS}fe0/statistics/tx_bytes"; }

# Safety checks before the first run: the stub answers for kexec, and CAP_SYS_BOOT is gone.
hosts_restart 1 push
stub=$(ip netns exec "${NS}fe" ssh -i "$P/.nxc/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o LogLevel=ERROR "root@$NET.1.1" 'command -v kexec; grep CapBnd /proc/self/status' 2>&1 || true)
[[ "$stub" == "$SD/bin/kexec"* ]] || die "the sessions' kexec is not the refusing stub: $stub"
bnd=$(echo "$stub" | awk '/CapBnd/ {print $2}')
(( (16#$bnd >> 22) & 1 )) && die "the hosts' sessions still have CAP_SYS_BOOT (CapBnd $bnd)"
[ -z "$(nsenter -t "${SSHD_PID[1]}" -m sh -c "ls '$B' 2>/dev/null")" ] || die "push mode: host 1 still sees $B"

ROWS=()
for k in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    for n in $SIZES; do
      hosts_restart "$n" "$mode"
      : >"$WORK/machines"; for i in $(seq 1 "$n"); do echo "root@$NET.1.$i" >>"$WORK/machines"; done
      client=$((n - 1))
      extra=(); [ "$mode" = push ] && extra=(--no-relay)
      before=$(tx); t0=$(now)
      rc=0
      ip netns exec "${NS}fe" env HOME="$P" NXC_STORE="$STORE" timeout 1800 "$NXC" start --project "$P" -f g5k-ramdisk \
        -m "$WORK/machines" --dry-run --timeout 900 -r "client=$client" "${extra[@]}" "$WEB" >"$L/run-$mode-$n-$k.log" 2>&1 || rc=$?
      t1=$(now); after=$(tx)
      staged=$(staged_count "$n")
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
      ratio=$(awk -v a="$before" -v b="$after" -v s="$BUNDLE" 'BEGIN {printf "%.4f", (b - a) / s}')
      summary=$(grep -o 'bundle: .*' "$L/run-$mode-$n-$k.log" | head -1 || true)
      say "$mode N=$n run $k: exit $rc, $(printf %.1f "$secs") s, egress/bundle $(printf %.3f "$ratio"), staged on $staged/$n; $summary"
      [ "$rc" = 0 ] || { tail -30 "$L/run-$mode-$n-$k.log" >&2; die "the dry run failed ($mode, N=$n)"; }
      [ "$staged" = "$n" ] || die "$mode N=$n: only $staged of $n hosts hold the bundle"
      ROWS+=("$mode $n $k $secs $ratio $((after - before))")
    done
  done
done

# --- faults ------------------------------------------------------------------------------------------
REPORT=$P/deploy/webserver.g5k-ramdisk.report.json
FROWS=()
report_host() { # ADDRESS FIELD...: the report's fields for that host, tab-separated
  python3 - "$REPORT" "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); h = [x for x in r["hosts"] if x["host"].endswith("@" + sys.argv[2]) or x["host"] == sys.argv[2]]
def field(x, f):
    if f == "failedPhase": return next((p["phase"] for p in x["phases"] if not p["ok"]), "-")
    if f == "transfers": return "+".join(("ok" if p["ok"] else "short") for p in x["phases"] if p["phase"] == "transfer")
    return str(x.get(f) if x.get(f) is not None else "-")
print("\t".join(field(h[0], f) for f in sys.argv[3:]) if h else "absent")
PY
}
relay_killer() { # I: kills host I's relay (its process group) once 16 MiB of the stream are in; prints what it did
  local i=$1 t=0 kb pid
  while [ $t -lt 2400 ]; do
    kb=$(nsenter -t "${SSHD_PID[$i]}" -m sh -c 'du -sk /var/lib/nxc/bundle/.relay.in 2>/dev/null' | cut -f1)
    if [ -n "$kb" ] && [ "$kb" -ge 16384 ]; then
      pid=$(nsenter -t "${SSHD_PID[$i]}" -m cat /var/lib/nxc/bundle/.relay.pid 2>/dev/null || true)
      if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'relay.port'; then
        kill -KILL -- "-$pid" && echo "killed at $kb KiB" && return 0
      fi
    fi
    sleep 0.05; t=$((t + 1))
  done
  echo "never saw 16 MiB arrive"
}
for k in $(seq 1 "$FAULT_RUNS"); do
  for fault in $FAULTS; do
    n=$FAULT_N
    case $fault in
      unreachable)
        hosts_restart $((n + 1)) relay
        : >"$WORK/machines"; for i in $(seq 1 $((n + 1))); do echo "root@$NET.1.$i" >>"$WORK/machines"; done
        ip -n "${NS}h2" link set "${NS}e2" down ;;
      relay-killed|resume)
        hosts_restart "$n" relay
        : >"$WORK/machines"; for i in $(seq 1 "$n"); do echo "root@$NET.1.$i" >>"$WORK/machines"; done
        [ "$fault" = resume ] && ip -n "${NS}h2" link set "${NS}e2" down ;;
    esac
    log=$L/fault-$fault-$k.log
    before=$(tx); t0=$(now); rc=0
    ip netns exec "${NS}fe" env HOME="$P" NXC_STORE="$STORE" timeout 1800 "$NXC" start --project "$P" -f g5k-ramdisk \
      -m "$WORK/machines" --dry-run --timeout 900 -r "client=$((n - 1))" "$WEB" >"$log" 2>&1 &
    nxc_pid=$!
    what=""
    [ "$fault" = relay-killed ] && what=$(relay_killer 3)
    wait "$nxc_pid" || rc=$?
    t1=$(now); after=$(tx)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    ratio=$(awk -v a="$before" -v b="$after" -v s="$BUNDLE" 'BEGIN {printf "%.4f", (b - a) / s}')
    case $fault in
      unreachable)
        ip -n "${NS}h2" link set "${NS}e2" up
        IFS=$'\t' read -r st cls ph by <<<"$(report_host "$NET.1.2" state errorClass failedPhase replacedBy)"
        what="host 2: $st, $cls in $ph, replaced by ${by#root@}"
        # Every host but the unreachable one holds the bundle (the spare, host n+1, included).
        staged=$(( $(staged_count $((n + 1))) )); want=$n
        [ "$st" = replaced ] && [ "$cls" = unreachable ] && [ "$ph" = connect ] && [ "$by" = "root@$NET.1.$((n + 1))" ] \
          || { tail -30 "$log" >&2; die "unreachable run $k: the report says $what"; } ;;
      resume)
        # No spare: the dry run fails, naming host 2. Its link comes back, and --resume --dry-run
        # redoes host 2 alone; the run's figures are the two together.
        IFS=$'\t' read -r st cls ph <<<"$(report_host "$NET.1.2" state errorClass failedPhase)"
        [ "$rc" != 0 ] && [ "$st" = failed ] && [ "$cls" = unreachable ] && [ "$ph" = connect ] \
          || { tail -30 "$log" >&2; die "resume run $k: exit $rc, the report says host 2: $st, $cls in $ph"; }
        ip -n "${NS}h2" link set "${NS}e2" up
        rc=0; r0=$(now); rb=$(tx)
        ip netns exec "${NS}fe" env HOME="$P" NXC_STORE="$STORE" timeout 1800 "$NXC" start --project "$P" -f g5k-ramdisk \
          -m "$WORK/machines" --dry-run --resume --timeout 900 -r "client=$((n - 1))" "$WEB" >"$log.resume" 2>&1 || rc=$?
        r1=$(now); ra=$(tx)
        rsecs=$(awk -v a="$r0" -v b="$r1" 'BEGIN {printf "%.1f", b - a}')
        rratio=$(awk -v a="$rb" -v b="$ra" -v s="$BUNDLE" 'BEGIN {printf "%.3f", (b - a) / s}')
        secs=$(awk -v a="$t0" -v b="$r1" 'BEGIN {printf "%.3f", b - a}')
        ratio=$(awk -v a="$before" -v b="$ra" -v s="$BUNDLE" 'BEGIN {printf "%.4f", (b - a) / s}')
        redo=$(grep -o 'resume: .*' "$log.resume" | head -1 || true)
        [ "$redo" = "resume: $((n - 1)) host(s) still hold the bundle from the last dry run; to redo: client1 on root@$NET.1.2" ] \
          || { tail -30 "$log.resume" >&2; die "resume run $k: $redo"; }
        st=$(report_host "$NET.1.2" state)
        what="host 2: failed in connect (unreachable), then $st after --resume ($rsecs s, egress/bundle $rratio)"
        log=$log.resume
        staged=$(staged_count "$n"); want=$n ;;
      relay-killed)
        IFS=$'\t' read -r st tr <<<"$(report_host "$NET.1.3" state transfers)"
        what="$what; host 3: $st, transfers $tr"
        staged=$(staged_count "$n"); want=$n
        [[ "$what" == killed* ]] || { tail -30 "$log" >&2; die "relay-killed run $k: $what"; } ;;
    esac
    summary=$(grep -o 'bundle: .*' "$log" | head -1 || true)
    say "fault $fault run $k: exit $rc, $(printf %.1f "$secs") s, egress/bundle $(printf %.3f "$ratio"), staged on $staged; $what; $summary"
    [ "$rc" = 0 ] || { tail -30 "$log" >&2; die "the dry run with fault $fault failed (run $k)"; }
    [ "$staged" -ge "$want" ] || die "fault $fault run $k: only $staged hosts hold the bundle, $want expected"
    FROWS+=("$fault|$secs|$ratio|$what|$summary")
  done
done

# --- report ------------------------------------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
{
  echo "# Benchmark: distributing a g5k-ramdisk bundle to N simulated testbed hosts (bench/scale.sh)"
  echo
  echo "- Date: $(date -u +%Y-%m-%d), $(( $(date +%s) - T0 )) s in all"
  echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "- nxc: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown); bundle (kernel + initrd + kexec.sh): $BUNDLE bytes"
  echo "- Links: tc token bucket at $RATE on the frontend's uplink and on each host's downlink and uplink, through one bridge"
  echo "- Each figure: the median of $RUNS cold \`nxc start -f g5k-ramdisk --dry-run\` (fresh hosts, nothing staged; stops before the kexec)"
  echo
  echo "| mode | N hosts | dry run (s) | frontend egress / bundle | egress (MiB) |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for mode in $MODES; do
    for n in $SIZES; do
      sel=$(printf '%s\n' "${ROWS[@]}" | awk -v m="$mode" -v n="$n" '$1 == m && $2 == n')
      s=$(echo "$sel" | awk '{print $4}' | median)
      r=$(echo "$sel" | awk '{print $5}' | median)
      b=$(echo "$sel" | awk '{print $6}' | median)
      printf '| %s | %d | %.1f | %.3f | %.1f |\n' "$mode" "$n" "$s" "$r" "$(awk -v b="$b" 'BEGIN {print b / 1048576}')"
    done
  done
  echo
  echo "Goals (issue 14): frontend egress / bundle <= 1.1 for every N; the time to reach every host at N=30 <= 1.5 x N=1."
  echo
  echo "- **push** (\`--no-relay\`, hosts that share no filesystem with the frontend): nxc sends the whole bundle to every"
  echo "  host over its own SSH stream, so the egress is N bundles and the time grows with N at the frontend's uplink:"
  echo "  what nxc did before issue 14, the baseline."
  echo "- **relay** (the default for hosts that share no filesystem): the hosts form a chain; nxc streams the bundle once"
  echo "  into the first host's SSH session and each host unpacks it while passing it on to the next over TCP"
  echo "  (perl from perl-base, on every Debian host). Each host's copy is then checked by its SHA-256; hosts left short"
  echo "  form a second chain, and what they still lack goes over SSH. Here every host's relay runs on this machine's $(nproc) cores, so at large N the CPU,"
  echo "  not the links, bounds the chain; on a testbed each host has its own."
  echo "- **shared** (hosts that see the project's build folder at the same path, as the Grid'5000 homes over NFS): each"
  echo "  host copies the bundle from there and nxc compares its SHA-256, so the frontend sends only SSH's own traffic."
  echo "  Here that folder is this machine's disk seen through a bind of the same filesystem, not NFS (this kernel has"
  echo "  no nfsd): the copies cost no network here. On Grid'5000 they load the site's NFS server, not the frontend."
  echo
  echo "The egress goal is met by relay and shared at every N. The times say little about a testbed: every host"
  echo "(its sshd, its copy, its SHA-256 check, its relay) runs on this machine's $(nproc) cores, so even the shared"
  echo "mode, which uses no network at all, grows with N. What the frontend's uplink carries is the figure that"
  echo "carries over."
  if [ -n "$FAULTS" ]; then
    echo
    echo "## Faults"
    echo
    echo "$FAULT_RUNS cold dry runs each, $FAULT_N nodes, relay mode, default \`--retries\` (2), median and range:"
    echo
    echo "| fault | dry run (s) | frontend egress / bundle | every run |"
    echo "| --- | ---: | ---: | --- |"
    for fault in $FAULTS; do
      sel=$(printf '%s\n' "${FROWS[@]}" | awk -F'|' -v f="$fault" '$1 == f')
      s=$(echo "$sel" | cut -d'|' -f2 | median); smin=$(echo "$sel" | cut -d'|' -f2 | sort -g | head -1); smax=$(echo "$sel" | cut -d'|' -f2 | sort -g | tail -1)
      r=$(echo "$sel" | cut -d'|' -f3 | median); rmin=$(echo "$sel" | cut -d'|' -f3 | sort -g | head -1); rmax=$(echo "$sel" | cut -d'|' -f3 | sort -g | tail -1)
      printf '| %s | %.1f (%.1f-%.1f) | %.3f (%.3f-%.3f) | %s |\n' "$fault" "$s" "$smin" "$smax" "$r" "$rmin" "$rmax" \
        "$(echo "$sel" | cut -d'|' -f4 | sort | uniq -c | awk '{c=$1; $1=""; printf "%s%dx%s", (NR>1?"; ":""), c, $0}')"
    done
    echo
    echo "- **unreachable**: one host's link is down before the start, so SSH to it times out (10 s) on each of its"
    echo "  three tries, 2 s then 4 s apart. It is named in the report with its phase (connect) and class"
    echo "  (unreachable); the host beyond the nodes in the machine file, a spare, takes its node before any"
    echo "  transfer and joins the chain, which the frontend still feeds once; every exit is 0."
    echo "- **relay-killed**: the third host's relay is killed (SIGKILL to its process group) once 16 MiB have reached"
    echo "  it. The hosts after it get a short stream, fail their SHA-256 check, and form a second chain with it,"
    echo "  fed once more from here: the frontend sends about two bundles, not one per host cut short. The"
    echo "  report gives host 3's two transfers (short, then ok)."
    echo "- **resume**: as unreachable, but with no spare in the machine file: the dry run exits non-zero and the"
    echo "  report names host 2 (connect, unreachable). Its link comes back and \`--resume --dry-run\` redoes host 2"
    echo "  alone (the others are asked whether they still hold the whole bundle, and keep it). The time and egress"
    echo "  of the row are both runs together; the resume's own are in the last column."
    echo "- A host that never comes back after its kexec needs VMs as hosts (these cannot kexec): bench/faults-vm.sh"
    echo "  below, and the g5k-ramdisk end-to-end test (a spare after the kexec, and \`--resume\` on VMs)."
  fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
say "wrote $OUT"
