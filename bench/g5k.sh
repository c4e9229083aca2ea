#!/usr/bin/env bash
# bench/g5k.sh: measures nxc's g5k-ramdisk deployer against the "Performance" goals of issue 3 and
# writes docs/benchmarks-g5k.md (a complete file, regenerated on every run).
#
#   1. `nxc start -f g5k-ramdisk` until every node is ready: 3 hosts beside 1 host (goal <= 1.3x).
#      QEMU VMs play the reserved hosts, as in Tests/EndToEndTests/G5KRamdiskTests.swift: the
#      fixture Tests/EndToEndTests/Fixtures/stockhost (Debian + sshd + kexec-tools) started with
#      the vm-ramdisk flavour; nxc kexecs them into compositions/webserver. Before each run the
#      hosts are stock again: `nxc stop` of the VMs, then `nxc start` of fresh ones (not timed).
#   2. `nxc start -f g5k-ramdisk --dry-run` fan-out to 30 sshd instances, each in a network
#      namespace this script creates on this machine (veth 10.201.I.1/30 <-> 10.201.I.2/30, no
#      route anywhere else), beside 1 (goal <= 3x). Every sshd runs in its own mount namespace
#      with a private tmpfs on /tmp and one on /var/lib/nxc, where nxc pushes its bundle
#      (/var/lib/nxc/bundle): "cold" runs restart the sshds first (empty: kernel and initrd are
#      pushed to every host), "warm"
#      runs find the bundle there (only SHA-256 checks). The goal applies to the cold case.
#
# Each figure is the median of $RUNS runs (default 3); every run is listed. The 3-host and 1-host
# runs (and the 30-host and 1-host ones) alternate, so that a change of load on the machine does
# not fall on one side only. Load average, CPU use and other QEMU processes are recorded per run.
#
# Environment:
#   NXC_BIN     nxc binary (default: .build/release/nxc of this repository; run `make build`)
#   NXC_AGENT   nxc-agent binary (default: the one beside nxc, as nxc itself looks it up)
#   NXC_STORE   store (default: $XDG_CACHE_HOME/nxc or ~/.cache/nxc, shared: builds are warm)
#   RUNS        runs per measurement (default 3)
#   G5K_HOSTS   sshd instances of the dry-run fan-out (default 30)
#   G5K_TMP     parent of the scratch folder (default: $TMPDIR or /tmp)
#   G5K_OUT     report file (default: docs/benchmarks-g5k.md of this repository)
#   G5K_SKIP    space-separated parts to skip: start dryrun
#   G5K_KEEP=1  keep the scratch folder (project, logs, console logs) for inspection
#
# Runs as root (network namespaces; sshd). Safety: kexec never runs on this machine: only nxc runs
# it, inside the QEMU guests. The sshd sessions get a PATH whose first folder holds a `kexec` that
# refuses to run (this machine has no kexec-tools; nxc's check wants one; a dry run never calls
# it). QEMU networking stays as nxc makes it (user-mode, forwards on 127.0.0.1). Every VM is
# stopped with `nxc stop` and its PID checked; every sshd is stopped by its PID; every namespace
# is deleted. Nothing is killed by name.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$REPO/bench/testbed-sshd.sh"
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
STORE=${NXC_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxc}
RUNS=${RUNS:-3}
HOSTS=${G5K_HOSTS:-30}
OUT=${G5K_OUT:-$REPO/docs/benchmarks-g5k.md}
SKIP=" ${G5K_SKIP:-} "
REPORT=$REPO/bench/g5k-report.py
PY=/usr/bin/python3
STOCK=$REPO/Tests/EndToEndTests/Fixtures/stockhost
WEB=$REPO/compositions/webserver
TIMEOUT=900            # nxc start --timeout (TCG boots are slow on a loaded machine)
NS=nxcb                # namespace / veth prefix
NET=10.201             # 10.201.I.0/30 per namespace

say() { printf '[g5k-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
skipped() { [[ "$SKIP" == *" $1 "* ]]; }
now() { date +%s.%N; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, sshd): sudo bash bench/g5k.sh"
[ -x "$NXC" ] || die "$NXC not found; run \`make build\` or set NXC_BIN"
"$NXC" start --help 2>/dev/null | grep -q -- '--dry-run' \
  || die "$NXC has no g5k-ramdisk deployer (\`nxc start --dry-run\` is missing): it is older than this checkout; run \`make build\`"
[ -n "${NXC_AGENT:-}" ] && [ ! -x "$NXC_AGENT" ] && die "NXC_AGENT=$NXC_AGENT is not executable"
for t in ip unshare ssh ssh-keygen nc qemu-system-x86_64 $PY; do command -v "$t" >/dev/null || die "$t is missing (make deps)"; done
[[ "$HOSTS" =~ ^[0-9]+$ ]] && [ "$HOSTS" -ge 2 ] && [ "$HOSTS" -le 250 ] || die "G5K_HOSTS must be 2..250"

WORK=$(mktemp -d "${G5K_TMP:-${TMPDIR:-/tmp}}/nxc-g5kbench.XXXXXX")
P=$WORK/p              # the project folder: stock hosts, webserver bundle, nxc's key
R=$WORK/results        # what the report reads
L=$WORK/logs           # everything else
mkdir -p "$P" "$R/runs" "$R/console" "$L"
SD=""                  # sshd folder: outside /tmp (each sshd gets a private /tmp)
declare -A SSHD_PID=() # namespace index -> sshd PID
NETNS_MADE=()
OUR_QEMU=()            # every QEMU PID nxc started for us (from state.json)
RUN_SSHD_CREATED=0
STOCK_UP=0

# nxc SUBCOMMAND ARGS…, always on the project folder (given before ARGS: `exec NODE -- CMD` ends
# with the remote command); HOME=P so that nxc's key is P/.nxc/id_ed25519, as in the tests.
nxc_() { local sub=$1; shift; HOME=$P NXC_STORE=$STORE timeout $((TIMEOUT + 300)) "$NXC" "$sub" --project "$P" "$@"; }

qemu_pids() { pgrep -x qemu-system-x86 || true; }   # the kernel truncates comm to 15 chars
record_qemu() {
  local f=$P/.nxc/run/stockhost.vm-ramdisk/state.json
  [ -f "$f" ] || return 0
  local p
  for p in $($PY -c 'import json,sys; print(" ".join(str(x["pid"]) for x in json.load(open(sys.argv[1]))["processes"] if x["name"]=="qemu"))' "$f"); do
    OUR_QEMU+=("$p")
  done
}
ours_alive() { local p; for p in "${OUR_QEMU[@]}"; do kill -0 "$p" 2>/dev/null && echo "$p"; done; return 0; }
other_qemu() { local n=0 p; for p in $(qemu_pids); do [[ " ${OUR_QEMU[*]} " == *" $p "* ]] || n=$((n + 1)); done; echo $n; }

stock_down() {
  [ "$STOCK_UP" = 1 ] || return 0
  nxc_ stop -f g5k-ramdisk --composition webserver >>"$L/stock.log" 2>&1 || true
  nxc_ stop -f vm-ramdisk --composition stockhost >>"$L/stock.log" 2>&1 || say "nxc stop of the stock hosts failed (see $L/stock.log)"
  local t=0
  while [ -n "$(ours_alive)" ] && [ $t -lt 30 ]; do sleep 1; t=$((t + 1)); done
  [ -z "$(ours_alive)" ] || say "warning: QEMU PID(s) $(ours_alive | tr '\n' ' ')still alive after nxc stop"
  STOCK_UP=0
}

sshd_stop() { # I: by its PID, then wait until it and its namespace's processes are gone
  local i=$1 pid=${SSHD_PID[$1]:-} t=0
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ $t -lt 50 ]; do sleep 0.1; t=$((t + 1)); done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  wait "$pid" 2>/dev/null || true
  unset "SSHD_PID[$i]"
}

cleanup() {
  local rc=$?
  set +e
  stock_down
  local i
  for i in "${!SSHD_PID[@]}"; do sshd_stop "$i"; done
  for i in "${NETNS_MADE[@]}"; do
    [ -n "$(ip netns pids "$NS$i" 2>/dev/null)" ] && say "warning: processes left in $NS$i: $(ip netns pids "$NS$i" | tr '\n' ' ')"
    ip netns del "$NS$i" 2>/dev/null
    ip link del "${NS}${i}h" 2>/dev/null   # gone with the namespace already, normally
  done
  [ "$RUN_SSHD_CREATED" = 1 ] && rmdir /run/sshd 2>/dev/null
  [ -n "$SD" ] && rm -rf "$SD"
  local left; left=$(ours_alive)
  [ -z "$left" ] || say "warning: our QEMU PID(s) still alive: $left"
  if [ "${G5K_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)

# --- facts about this machine and this nxc -------------------------------------------------------
kvm="no KVM: QEMU TCG"
grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ] && kvm="KVM usable here, but nxc's launch script asks for no accelerator: QEMU TCG"
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "commit_time=$(git -C "$REPO" log -1 --format=%ci 2>/dev/null || echo unknown)"
  echo "dirty=$(git -C "$REPO" status --porcelain --untracked-files=no -- Sources Package.swift flavours 2>/dev/null | wc -l)"
  echo "nproc=$(nproc)"
  echo "ram=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "kvm=$kvm"
  echo "qemu=$(qemu-system-x86_64 --version | head -1)"
  echo "openssh=$(ssh -V 2>&1)"
  echo "runs=$RUNS"
  echo "hosts=$HOSTS"
  echo "nxc_bin=$NXC"
  echo "nxc_built=$(date -u -r "$NXC" '+%Y-%m-%d %H:%M UTC')"
  echo "nxc_sha=$(sha256sum "$NXC" | cut -c1-12)"
  echo "agent_sha=$( [ -n "${NXC_AGENT:-}" ] && sha256sum "$NXC_AGENT" | cut -c1-12 || echo "beside nxc")"
  echo "store=$STORE"
} >"$R/facts"

# --- builds (not measured; warm when the store already holds them) -------------------------------
say "building the stock hosts (vm-ramdisk) and the webserver bundle (g5k-ramdisk)"
nxc_ build -f vm-ramdisk "$STOCK" >"$L/build-stockhost.log" 2>&1 || { cat "$L/build-stockhost.log" >&2; die "build of stockhost failed"; }
nxc_ build -f g5k-ramdisk "$WEB" >"$L/build-webserver.log" 2>&1 || { cat "$L/build-webserver.log" >&2; die "build of webserver failed"; }
B=$P/build/webserver/g5k-ramdisk
{
  echo "kernel_size=$(stat -c %s "$B/kernel")"
  echo "initrd_size=$(stat -c %s "$B/initrd")"
  echo "script_size=$(stat -c %s "$B/kexec.sh")"
  echo "stock_initrd_size=$(stat -c %s "$P/build/stockhost/vm-ramdisk/initrd")"
} >>"$R/facts"
# nxc's key for the nodes and the hosts: made now if no start made it yet (nxc uses it when present).
if [ ! -f "$P/.nxc/id_ed25519" ]; then
  mkdir -p "$P/.nxc"
  ssh-keygen -q -t ed25519 -N "" -C "nxc-g5k-bench" -f "$P/.nxc/id_ed25519"
fi

cpu_jiffies() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }  # total idle+iowait
HZ=$(getconf CLK_TCK)

# measure NAME K CMD...: runs CMD (output to runs/NAME.K.log), writes runs/NAME.K.env.
measure() {
  local name=$1 k=$2; shift 2
  local log=$R/runs/$name.$k.log
  local others load j0 j1 t0 t1 rc=0
  others=$(other_qemu); load=$(cut -d' ' -f1 /proc/loadavg); j0=$(cpu_jiffies)
  say "$name run $k: $*"
  t0=$(now)
  "$@" >"$log" 2>&1 || rc=$?
  t1=$(now); j1=$(cpu_jiffies)
  local busy cpus
  busy=$(echo "$j0 $j1" | awk '{dt = $3 - $1; di = $4 - $2; printf "%.0f", (dt > 0 ? 100 * (dt - di) / dt : 0)}')
  cpus=$(echo "$j0 $j1 $HZ" | awk '{printf "%.1f", (($3 - $1) - ($4 - $2)) / $5}')
  {
    echo "wall=$(echo "$t0 $t1" | awk '{printf "%.2f", $2-$1}')"
    echo "rc=$rc"
    echo "load1=$load"
    echo "load1_end=$(cut -d' ' -f1 /proc/loadavg)"
    echo "cpu_busy=$busy"
    echo "cpu_seconds=$cpus"
    echo "other_qemu=$others"
    echo "other_qemu_end=$(other_qemu)"
    echo "started=$(date -u -d "@${t0%.*}" +%T)"
  } >"$R/runs/$name.$k.env"
  say "$name run $k: $(grep ^wall= "$R/runs/$name.$k.env" | cut -d= -f2) s, exit $rc"
  [ $rc = 0 ] || tail -n 15 "$log" >&2
  return 0
}

# --- 1. nxc start: 3 hosts beside 1 ----------------------------------------------------------------
stock_up() { # N: N stock hosts as fresh VMs; writes WORK/machines-N
  local n=$1 args=() try
  args=(-r "host=$n" -r store=0)
  for try in 1 2; do
    STOCK_UP=1
    if nxc_ start -f vm-ramdisk --timeout "$TIMEOUT" "${args[@]}" "$STOCK" >>"$L/stock.log" 2>&1; then
      record_qemu
      $PY -c 'import json,sys
d = json.load(open(sys.argv[1]))
print("".join("root@127.0.0.1:%d\n" % d["nodes"][n]["ssh"]["port"] for n in d["order"]), end="")' \
        "$P/deploy/stockhost.vm-ramdisk.json" >"$WORK/machines-$n"
      [ "$(wc -l <"$WORK/machines-$n")" = "$n" ] && return 0
    fi
    record_qemu
    say "stock hosts did not start (try $try; see $L/stock.log)"
    stock_down
  done
  return 1
}

if ! skipped start; then
  say "part 1: nxc start -f g5k-ramdisk on QEMU stock hosts, 3 hosts beside 1"
  for k in $(seq 1 "$RUNS"); do
    order="3 1"; [ $((k % 2)) = 0 ] && order="1 3"
    for n in $order; do
      if ! stock_up "$n"; then echo "stock hosts did not start" >"$R/runs/start$n.$k.log"
        printf 'wall=0\nrc=99\n' >"$R/runs/start$n.$k.env"; continue; fi
      extra=(); [ "$n" = 1 ] && extra=(-r client=0)
      measure "start$n" "$k" nxc_ start -f g5k-ramdisk -m "$WORK/machines-$n" --timeout "$TIMEOUT" "${extra[@]}" "$WEB"
      # The nodes work: the page from a client (3 nodes), nginx on the server (1 node).
      if [ "$n" = 3 ]; then chk=(client1 -- curl -sf http://server/); else chk=(server -- systemctl is-active nginx); fi
      if out=$(nxc_ exec "${chk[@]}" 2>&1); then echo "check=ok ($out)" >>"$R/runs/start$n.$k.env"
      else echo "check=FAILED (${out//$'\n'/ })" >>"$R/runs/start$n.$k.env"; fi
      for c in "$P"/.nxc/run/stockhost.vm-ramdisk/*.console.log; do
        [ -f "$c" ] && cp "$c" "$R/console/start$n.$k.$(basename "$c" .console.log).log"
      done
      stock_down
    done
  done
fi

# --- 2. dry-run fan-out: HOSTS sshd in network namespaces beside 1 ---------------------------------
sshd_start() { # I
  local i=$1
  ip netns exec "$NS$i" unshare -m sh -c \
    'mount -t tmpfs -o size=512m,mode=1777 tmpfs /tmp && mount -t tmpfs -o size=512m,mode=0700 tmpfs /var/lib/nxc && exec /usr/sbin/sshd -D -e -f "$0"' "$SD/sshd-$i.conf" \
    >>"$L/sshd-$i.log" 2>&1 &
  SSHD_PID[$i]=$!
}
sshd_wait() { # I: the port answers, within 20 s
  local i=$1 t=0
  while ! nc -z -w 1 "$NET.$i.2" 22 2>/dev/null; do
    kill -0 "${SSHD_PID[$i]}" 2>/dev/null || { cat "$L/sshd-$i.log" >&2; die "sshd $i (PID ${SSHD_PID[$i]}) exited"; }
    t=$((t + 1)); [ $t -le 100 ] || die "sshd $i does not answer on $NET.$i.2:22 after 20 s"
    sleep 0.2
  done
}
sshd_restart() { # I…: fresh sshds, so fresh /tmp
  local i
  for i in "$@"; do sshd_stop "$i"; done
  for i in "$@"; do
    [ -z "$(ip netns pids "$NS$i")" ] || die "processes left in $NS$i after its sshd stopped: $(ip netns pids "$NS$i" | tr '\n' ' ')"
    sshd_start "$i"
  done
  for i in "$@"; do sshd_wait "$i"; done
}

if ! skipped dryrun; then
  say "part 2: nxc start --dry-run to $HOSTS sshd in network namespaces, beside 1"
  # sshd (installed, never started as a service: Debian's policy-rc.d is honoured, and made for
  # the install if this machine has none).
  if ! dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | grep -q "ok installed"; then
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1; fi
    say "installing openssh-server (its service is not started)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server; } >"$L/apt.log" 2>&1 \
      || { [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; cat "$L/apt.log" >&2; die "apt-get install openssh-server failed"; }
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  fi
  [ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing"
  # Names and addresses must be ours alone.
  ip netns list | grep -q "^$NS[0-9]" && die "network namespaces $NS* exist already (ip netns list): a previous run? remove them first"
  ip -4 route show | grep -q "^$NET\." && die "routes to $NET.* exist already on this machine; not touching them"
  ip -4 addr show | grep -q " $NET\." && die "addresses $NET.* exist already on this machine"
  if [ ! -d /run/sshd ]; then mkdir -m 755 /run/sshd; RUN_SSHD_CREATED=1; fi   # sshd's privilege separation folder

  SD=$(mktemp -d /var/tmp/nxc-g5kbench-sshd.XXXXXX)
  mkdir -p -m 0700 /var/lib/nxc   # the mount point of each sshd's private staging tmpfs
  case "$SD" in /tmp/*) die "the sshd folder must not be under /tmp";; esac
  ssh-keygen -q -t ed25519 -N "" -C "nxc-g5k-bench host" -f "$SD/host_ed25519"
  cp "$P/.nxc/id_ed25519.pub" "$SD/authorized_keys"
  mkdir "$SD/bin"
  printf '#!/bin/sh\necho "kexec: refused: this is nxc'"'"'s benchmark sshd on the machine that runs it" >&2\nexit 1\n' >"$SD/bin/kexec"
  chmod 755 "$SD/bin/kexec"
  for i in $(seq 1 "$HOSTS"); do
    ip netns add "$NS$i"; NETNS_MADE+=("$i")
    ip link add "${NS}${i}h" type veth peer name "${NS}${i}n"
    ip link set "${NS}${i}n" netns "$NS$i"
    ip addr add "$NET.$i.1/30" dev "${NS}${i}h"
    ip link set "${NS}${i}h" up
    ip -n "$NS$i" link set lo up
    ip -n "$NS$i" addr add "$NET.$i.2/30" dev "${NS}${i}n"
    ip -n "$NS$i" link set "${NS}${i}n" up
    sshd_conf "$NET.$i.2" "$SD" "$i" >"$SD/sshd-$i.conf"
    echo "root@$NET.$i.2" >>"$WORK/dry-$HOSTS"
  done
  echo "root@$NET.1.2" >"$WORK/dry-1"
  all=$(seq 1 "$HOSTS")
  sshd_restart $all
  echo "sshd_pids=${SSHD_PID[*]}" >>"$R/facts"
  # Sanity: each sshd has its own tmpfs /tmp, and the stub comes first on the sessions' PATH.
  mnt=$(nsenter -t "${SSHD_PID[1]}" -m findmnt -n -o FSTYPE /tmp || true)
  [ "$mnt" = tmpfs ] || die "sshd 1 has no private tmpfs on /tmp (findmnt says '$mnt')"
  stub=$(ssh -i "$P/.nxc/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
           -o LogLevel=ERROR "root@$NET.1.2" 'command -v kexec' 2>&1 || true)
  [ "$stub" = "$SD/bin/kexec" ] || die "the sessions' kexec is '$stub', not the refusing stub"

  dry() { # N
    local n=$1
    nxc_ start -f g5k-ramdisk -m "$WORK/dry-$n" --dry-run --no-relay --timeout 600 -r "client=$((n - 1))" "$WEB"
  }
  # References without nxc, on the same sshds and keys: the bundle's bytes to N hosts at once (one
  # plain ssh each; or through a ControlMaster, as nxc pushes), and the SHA-256 of the pushed bundle
  # on N hosts at once (what nxc's check runs).
  ssh_ref=(ssh -i "$P/.nxc/id_ed25519" -o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=no
           -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
  ref_mux() { # HOST: master, the bytes through it, master closed
    local cm=(-o "ControlPath=$SD/cm-%C")
    timeout 600 "${ssh_ref[@]}" "${cm[@]}" -o ControlMaster=auto -o ControlPersist=60 "$1" true &&
      cat "$B/kernel" "$B/initrd" "$B/kexec.sh" | timeout 600 "${ssh_ref[@]}" "${cm[@]}" "$1" 'cat > /tmp/ref-bundle'
    local rc=$?
    timeout 20 "${ssh_ref[@]}" "${cm[@]}" -O exit "$1" 2>/dev/null
    return $rc
  }
  ref() { # copy|copymux|hash N
    local what=$1 n=$2 i p rc=0 pids=()
    for i in $(seq 1 "$n"); do
      if [ "$what" = copy ]; then
        cat "$B/kernel" "$B/initrd" "$B/kexec.sh" | timeout 600 "${ssh_ref[@]}" "root@$NET.$i.2" 'cat > /tmp/ref-bundle' &
      elif [ "$what" = copymux ]; then
        ref_mux "root@$NET.$i.2" &
      else
        timeout 600 "${ssh_ref[@]}" "root@$NET.$i.2" 'cd /var/lib/nxc/bundle && sha256sum kernel initrd kexec.sh' >/dev/null &
      fi
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return $rc
  }
  bundle_count() { # how many sshd /tmp hold the whole bundle
    local i c=0
    for i in $all; do
      nsenter -t "${SSHD_PID[$i]}" -m sh -c 'cd /var/lib/nxc/bundle 2>/dev/null && [ -f kernel ] && [ -f initrd ] && [ -f kexec.sh ]' && c=$((c + 1))
    done
    echo $c
  }
  for k in $(seq 1 "$RUNS"); do
    order="$HOSTS 1"; [ $((k % 2)) = 0 ] && order="1 $HOSTS"
    for n in $order; do   # cold: fresh sshds, empty /tmp (the reference first, on fresh sshds too)
      if [ "$n" = 1 ]; then sshd_restart 1; else sshd_restart $all; fi
      measure "ref${n}copy" "$k" ref copy "$n"
      if [ "$n" = 1 ]; then sshd_restart 1; else sshd_restart $all; fi
      measure "ref${n}copymux" "$k" ref copymux "$n"
      if [ "$n" = 1 ]; then sshd_restart 1; else sshd_restart $all; fi
      measure "dry${n}cold" "$k" dry "$n"
      echo "bundles_after=$(bundle_count)" >>"$R/runs/dry${n}cold.$k.env"
    done
    for n in $order; do   # warm: the bundle is on every host
      echo "bundles_before=$(bundle_count)" >"$R/runs/dry${n}warm.$k.pre"
      measure "dry${n}warm" "$k" dry "$n"
      cat "$R/runs/dry${n}warm.$k.pre" >>"$R/runs/dry${n}warm.$k.env"; rm -f "$R/runs/dry${n}warm.$k.pre"
      measure "ref${n}hash" "$k" ref hash "$n"
    done
  done
  for i in $all; do sshd_stop "$i"; done
  cat "$L"/sshd-*.log >"$R/sshd.log"
  for i in "${NETNS_MADE[@]}"; do ip netns del "$NS$i"; done
  NETNS_MADE=()
  left=$(ip netns list | grep -c "^$NS[0-9]" || true)
  echo "netns_left=$left" >>"$R/facts"
fi

# --- check and report --------------------------------------------------------------------------------
echo "our_qemu=${OUR_QEMU[*]}" >>"$R/facts"
echo "our_qemu_alive=$(ours_alive | tr '\n' ' ')" >>"$R/facts"
echo "total=$(( $(date +%s) - T0 ))" >>"$R/facts"
mkdir -p "$(dirname "$OUT")"
$PY "$REPORT" "$R" >"$OUT.tmp" || { rm -f "$OUT.tmp"; die "report generation failed"; }
mv "$OUT.tmp" "$OUT"
say "wrote $OUT ($(( $(date +%s) - T0 )) s)"
