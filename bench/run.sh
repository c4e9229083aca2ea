#!/usr/bin/env bash
# `make bench`: measures nxc against the "Performance" goals of issue 2 and writes
# docs/benchmarks.md (a complete file, regenerated on every run).
#
# Each figure is the median of $RUNS runs (default 3), timed with hyperfine; every run is
# listed too. The baseline is what a user does without nxc: debootstrap --variant=minbase of the
# same packages (flavour + composition, kernel included), packed as tar.gz.
#
# Environment:
#   NXC_BIN      nxc binary (default: .build/release/nxc of this repository)
#   NXC_AGENT    nxc-agent binary (default: the one beside nxc, as nxc itself looks it up)
#   NXC_BIN_COMMIT  what NXC_BIN was built from, when not HEAD (said in the report)
#   RUNS         runs per measurement (default 3)
#   BENCH_TMP    parent of the scratch folder (default: $TMPDIR or /tmp); needs ~4 GB free
#   BENCH_OUT    report file (default: docs/benchmarks.md of this repository)
#   BENCH_SKIP   space-separated measurements to skip: baseline cold edit package noop start
#   BENCH_QUIET_WAIT  seconds to wait, before each measurement, for no other QEMU VM and an idle
#                CPU (default 300; 0 measures at once)
#   BENCH_KEEP=1 keep the scratch folder (stores, logs, debootstrap tree) for inspection
#
# Runs as root (mmdebstrap root mode, debootstrap); uses only the host's Debian mirror.
# Every VM it starts is stopped with `nxc stop`; nothing is killed by name.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
RUNS=${RUNS:-3}
OUT=${BENCH_OUT:-$REPO/docs/benchmarks.md}
SKIP=" ${BENCH_SKIP:-} "
FLAVOUR=vm-ramdisk
EXAMPLE=$REPO/compositions/webserver
PY=/usr/bin/python3
HELPER=$REPO/bench/bench.py
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
skipped() { [[ "$SKIP" == *" $1 "* ]]; }
q() { printf '%q' "$1"; }

# --- tools (idempotent) ---------------------------------------------------------------------
need=""
for p in debootstrap hyperfine jq python3-yaml; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  say "installing:$need"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need >/dev/null
fi
[ -x "$NXC" ] || { echo "bench: $NXC not found; run \`make build\` or set NXC_BIN" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/nxc-bench.XXXXXX")
R=$WORK/results          # what report generation reads
mkdir -p "$R" "$WORK/logs"
STARTED_PROJECTS=()

SAMPLER=""
cleanup() {
  local rc=$?
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  for p in "${STARTED_PROJECTS[@]}"; do
    "$NXC" stop --project "$p" >/dev/null 2>&1 || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)

# Other users' QEMU VMs and builds compete for the CPU. Every 2 s the sampler writes the time,
# the number of QEMU processes not started by this bench, and the CPU busy % (all processes), so
# that the report can say what else ran during each measurement. Before each measurement the bench
# waits (up to $BENCH_QUIET_WAIT s, default 300) for no other VM and a CPU under 25% busy.
other_qemu() { ps -eo args= | awk -v w="$WORK" '/^qemu-system/ && index($0, w) == 0' | wc -l; }
cpu_ticks() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }
busy_since() { # PREV_TOTAL PREV_IDLE -> busy % since then
  local t i; read -r t i < <(cpu_ticks)
  echo $(( (t - $1) > 0 ? 100 * ((t - $1) - (i - $2)) / (t - $1) : 0 ))
}
(
  read -r pt pi < <(cpu_ticks)
  while sleep 2; do
    b=$(busy_since "$pt" "$pi"); read -r pt pi < <(cpu_ticks)
    echo "$(date +%s) $(other_qemu) $b"
  done
) >"$R/qemu-samples" 2>/dev/null &
SAMPLER=$!
wait_quiet() {
  local deadline=$(( $(date +%s) + ${BENCH_QUIET_WAIT:-300} )) o b pt pi said=0
  while :; do
    read -r pt pi < <(cpu_ticks); sleep 2; b=$(busy_since "$pt" "$pi"); o=$(other_qemu)
    if [ "$o" = 0 ] && [ "$b" -lt 25 ]; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then say "machine still busy ($o other VM(s), CPU $b% busy): measuring anyway"; break; fi
    [ $said = 1 ] || { say "waiting for a quiet machine ($o other VM(s), CPU $b% busy)"; said=1; }
  done
  QUIET="$o $b"
}

# --- facts about this machine and this nxc ----------------------------------------------------
MIRROR=$($PY "$HELPER" mirror)
SUITE=bookworm
PKGS=$($PY "$HELPER" packages "$REPO/flavours/$FLAVOUR.yaml" "$EXAMPLE/composition.yaml")
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "dirty=$(git -C "$REPO" status --porcelain --untracked-files=no -- Sources Package.swift flavours 2>/dev/null | wc -l)"
  echo "nproc=$(nproc)"
  echo "ram=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "kvm_device=$([ -e /dev/kvm ] && echo present || echo absent)"
  echo "qemu=$(qemu-system-x86_64 --version 2>/dev/null | head -1)"
  echo "hyperfine=$(hyperfine --version)"
  echo "debootstrap=$(dpkg-query -W -f='${Version}' debootstrap)"
  echo "mmdebstrap=$(dpkg-query -W -f='${Version}' mmdebstrap 2>/dev/null || echo missing)"
  echo "mirror=$MIRROR"
  echo "suite=$SUITE"
  echo "packages=$PKGS"
  echo "runs=$RUNS"
  echo "nxc_bin=$NXC"
  echo "nxc_built=$(date -u -r "$NXC" '+%Y-%m-%d %H:%M UTC')"
  echo "nxc_sha=$(sha256sum "$NXC" | cut -c1-12)"
  echo "nxc_bin_commit=${NXC_BIN_COMMIT:-}"
  echo "fs=$(df -PT "$WORK" | awk 'NR==2 {print $2}')"
} >"$R/facts"

# measure NAME PREPARE COMMAND [CLEANUP [RUNS [TAG]]]: hyperfine, RUNS runs (default $RUNS); each
# run's output is appended to logs/NAME.log after a "=== run" line; results/NAME[TAG].json is
# hyperfine's export (several TAGs of one NAME are runs of the same measurement, made apart).
measure() {
  local name=$1 prepare=$2 cmd=$3 cleanup=${4:-true} runs=${5:-$RUNS} tag=${6:-}
  local log=$WORK/logs/$name.log
  say "$name${tag:+ ($tag)}: $cmd"
  wait_quiet
  local t0; t0=$(date +%s)
  if hyperfine --runs "$runs" --shell bash --style basic --export-json "$R/$name$tag.json" \
       --prepare "$prepare; echo '=== run' >>$(q "$log")" --cleanup "$cleanup" \
       -n "$name" "{ $cmd; } >>$(q "$log") 2>&1" >>"$WORK/logs/$name.hyperfine" 2>&1; then
    cp "$log" "$R/$name.log"
    say "$name${tag:+ ($tag)}: $(jq -r '.results[0].times | map(.*100|round/100) | join(" s, ")' "$R/$name$tag.json") s"
  else
    say "$name: FAILED (see below)"; tail -n 30 "$log" >&2; tail -n 5 "$WORK/logs/$name.hyperfine" >&2
    cp "$log" "$R/$name.log"; echo failed >"$R/$name.failed"
    rm -f "$R/$name$tag.json"
  fi
  echo "$name $t0 $(date +%s) $QUIET" >>"$R/windows"
}

build_cmd() { # STORE COMPOSITION PROJECT [extra args]
  echo "NXC_STORE=$(q "$1") $(q "$NXC") build -f $FLAVOUR $(q "$2") --project $(q "$3")"
}

COMP=$WORK/webserver;        cp -r "$EXAMPLE" "$COMP"
PROJ=$WORK/proj
STORE=$WORK/store-cold       # after the cold runs: the warm store for the other measurements

# --- 1+2. baseline (debootstrap + tar.gz) and cold build (empty store), interleaved ---------------
# Both download the same .debs from the mirror, whose caches warm up: runs alternate
# (baseline, cold; cold, baseline; …) so that neither always pays for the first download.
D=$WORK/debootstrap
stamp='echo "stamp $(date +%s.%N)"'
baseline_prepare="rm -rf $(q "$D") && mkdir -p $(q "$D")"
baseline_cmd="$stamp && debootstrap --variant=minbase --include=$PKGS $SUITE $(q "$D/root") $(q "$MIRROR") \
  && $stamp && tar -czf $(q "$D/rootfs.tar.gz") -C $(q "$D/root") . && $stamp \
  && stat -c 'size %s' $(q "$D/rootfs.tar.gz") && du -sb --apparent-size $(q "$D/root") | sed 's/^/tree /'"
cold_prepare="rm -rf $(q "$STORE") $(q "$PROJ") && mkdir -p $(q "$STORE")"
cold_cmd=$(build_cmd "$STORE" "$COMP" "$PROJ")
for k in $(seq 1 "$RUNS"); do
  order="baseline cold"; [ $((k % 2)) = 0 ] && order="cold baseline"
  for m in $order; do
    skipped $m && continue
    if [ $m = baseline ]; then measure baseline "$baseline_prepare" "$baseline_cmd" true 1 ".run$k"
    else measure cold "$cold_prepare" "$cold_cmd" true 1 ".run$k"; fi
  done
done
rm -rf "$D"
if [ -f "$PROJ/build/webserver/$FLAVOUR/initrd" ] && ! skipped cold; then
  stat -c '%s' "$PROJ/build/webserver/$FLAVOUR/initrd" >"$R/initrd.size"
  stat -c '%s' "$PROJ/build/webserver/$FLAVOUR/kernel" >"$R/kernel.size"
  sysroot=$(ls -d "$STORE"/*-system/root 2>/dev/null | head -1)
  [ -n "$sysroot" ] && du -sb --apparent-size "$sysroot" | cut -f1 >"$R/system-tree.size"
  du -sb "$STORE" | cut -f1 >"$R/store.size"
  cp "$(ls "$STORE"/*-system/apt.log | head -1)" "$R/system-apt-update.log" 2>/dev/null || true
  ls "$STORE" >"$R/store.entries"
fi
warm_ok() { ls -d "$STORE"/*-base >/dev/null 2>&1 && [ -f "$PROJ/build/webserver/$FLAVOUR/initrd" ]; }
needs_warm() { for m in edit package noop start; do skipped $m || return 0; done; return 1; }
if needs_warm && ! warm_ok; then
  say "no warm store from the cold build: building once, not measured"
  rm -rf "$STORE"; mkdir -p "$STORE"
  eval "$(build_cmd "$STORE" "$COMP" "$PROJ")" >"$WORK/logs/warmup.log" 2>&1
fi

# --- 3. rebuild after editing one role's file (warm store) -------------------------------------
if ! skipped edit; then
  CE=$WORK/webserver-edit; cp -r "$EXAMPLE" "$CE"
  eval "$(build_cmd "$STORE" "$CE" "$WORK/proj-edit")" >"$WORK/logs/edit-first.log" 2>&1
  measure edit "printf 'edited at %s\n' \"\$(date +%s%N)\" >$(q "$CE/index.html")" \
    "$(build_cmd "$STORE" "$CE" "$WORK/proj-edit")"
  # The new content must be in the payload segment appended after the cached system segment.
  seg=$(ls "$STORE"/*-initrd-system/system.cpio.zst | head -1)
  tail -c +$(( $(stat -c %s "$seg") + 1 )) "$WORK/proj-edit/build/webserver/$FLAVOUR/initrd" | zstd -dc \
    | cpio -i --quiet --to-stdout usr/share/nxc/roles/server/var/www/html/index.html >"$WORK/payload-index.html" 2>/dev/null || true
  if cmp -s "$WORK/payload-index.html" "$CE/index.html"; then echo yes >"$R/edit.shipped"; else echo no >"$R/edit.shipped"; fi
fi

# --- 4. rebuild after adding one package (hello) to one role -------------------------------------
if ! skipped package; then
  CH=$WORK/webserver-hello; cp -r "$EXAMPLE" "$CH"
  $PY "$HELPER" add-package "$CH/composition.yaml" client hello
  SH=$WORK/store-hello
  # Each run starts from the warm base alone: a fresh store holding a copy of the *-base entry.
  measure package "rm -rf $(q "$SH") && mkdir -p $(q "$SH") && cp -a $(q "$STORE")/*-base $(q "$SH")/" \
    "$(build_cmd "$SH" "$CH" "$WORK/proj-hello")"
  if ls "$SH"/*-system/root/usr/bin/hello >/dev/null 2>&1; then echo yes >"$R/hello.installed"; else echo no >"$R/hello.installed"; fi
  rm -rf "$SH"
fi

# --- 5. no-op rebuild ----------------------------------------------------------------------------
if ! skipped noop; then
  measure noop "true" "$(build_cmd "$STORE" "$COMP" "$PROJ")"
fi

# --- 6. VMs: nxc start of webserver (3 VMs) and of one VM alone ----------------------------------
if ! skipped start; then
  STARTED_PROJECTS+=("$PROJ")
  stop="$(q "$NXC") stop --project $(q "$PROJ") >/dev/null 2>&1 || true"
  start="$(q "$NXC") start -f $FLAVOUR $(q "$COMP") --project $(q "$PROJ") --timeout 400"
  measure start3 "$stop" "$start" "$stop"
  measure start1 "$stop" "$start -r client=0" "$stop"
  eval "$stop"
fi

echo "total=$(( $(date +%s) - T0 ))" >>"$R/facts"
mkdir -p "$(dirname "$OUT")"
$PY "$HELPER" report "$R" >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
say "wrote $OUT ($(( $(date +%s) - T0 )) s)"
