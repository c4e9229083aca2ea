#!/usr/bin/env bash
# bench/docker.sh: the docker flavour against the "Performance" goals of issue 4; writes
# docs/benchmarks-docker.md (a complete file, regenerated on every run).
#
#   1. Rebuild after editing one role's file (compositions/webserver's index.html): the image's
#      system layer comes from the store, only the payload layer and the archive are rewritten
#      (goal < 2 s).
#   2. `nxc start -f docker` of webserver until every node is ready (agent done, nginx active),
#      (a) the engine already has the image, (b) after an edit (docker load of the new image),
#      beside `nxc start -f vm-ramdisk` of the same composition on the same machine.
#
# Each figure is the median of $RUNS runs (default 3); every run is listed. Needs root, Debian's
# docker.io and docker-compose (installed if missing); starts a dockerd when none answers and
# stops it (by its PID) at the end. Every deployment it starts is stopped with `nxc stop`.
#
# Environment: NXC_BIN (default .build/release/nxc), NXC_STORE (default: nxc's, shared, so
# builds are warm), RUNS, DOCKER_BENCH_OUT (default docs/benchmarks-docker.md), DOCKER_BENCH_SKIP
# ("vm" skips the vm-ramdisk starts).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NXC=${NXC_BIN:-$REPO/.build/release/nxc}
export NXC_DATA=$REPO
RUNS=${RUNS:-3}
OUT=${DOCKER_BENCH_OUT:-$REPO/docs/benchmarks-docker.md}
SKIP=" ${DOCKER_BENCH_SKIP:-} "
say() { printf '[docker-bench %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
[ "$(id -u)" = 0 ] || { say "run as root"; exit 1; }
[ -x "$NXC" ] || { say "$NXC not found; run \`make build\`"; exit 1; }

missing=""
for p in docker.io docker-compose; do dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  say "installing:$missing"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nxc-dockerbench.XXXXXX")
P=$WORK/p
mkdir -p "$P"
cp -r "$REPO/compositions/webserver" "$P/webserver"
DOCKERD=""
cleanup() {
  local rc=$?
  for f in docker vm-ramdisk; do
    [ -e "$P/.nxc/run/webserver.$f/state.json" ] && HOME=$P "$NXC" stop -f $f --composition webserver --project "$P" >/dev/null 2>&1 || true
  done
  if [ -n "$DOCKERD" ]; then
    kill "$DOCKERD" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$DOCKERD" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$DOCKERD" 2>/dev/null && kill -9 "$DOCKERD" 2>/dev/null || true
    say "stopped the dockerd this script started (PID $DOCKERD)"
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

if ! timeout 20 docker info >/dev/null 2>&1; then
  dockerd >"$WORK/dockerd.log" 2>&1 </dev/null &
  DOCKERD=$!
  for _ in $(seq 1 60); do timeout 20 docker info >/dev/null 2>&1 && break; sleep 0.5; done
  timeout 20 docker info >/dev/null 2>&1 || { say "dockerd did not answer in 30 s"; tail -5 "$WORK/dockerd.log" >&2; exit 1; }
  say "started dockerd (PID $DOCKERD)"
fi

nxc() { HOME=$P "$NXC" "$@" --project "$P"; }
T() { local log=$1; shift; local t0 t1; t0=$(now); "$@" >"$log" 2>&1 || { say "failed: $*"; tail -20 "$log" >&2; return 1; }; t1=$(now); python3 -c "print(f'{$t1-$t0:.2f}')"; }

say "warm-up: build (docker, vm-ramdisk) and one start/stop"
nxc build -f docker "$P/webserver" >"$WORK/warm-build.log" 2>&1
nxc start -f docker "$P/webserver" >"$WORK/warm-start.log" 2>&1
nxc stop -f docker --composition webserver >/dev/null 2>&1
skip_vm=0; [[ "$SKIP" == *" vm "* ]] && skip_vm=1
[ $skip_vm = 1 ] || nxc build -f vm-ramdisk "$P/webserver" >"$WORK/warm-build-vm.log" 2>&1

EDIT=(); WARM=(); COLD=(); VM=(); LOADS=()
for i in $(seq 1 "$RUNS"); do
  printf 'edited for run %s\n' "$i" > "$P/webserver/index.html"
  EDIT+=("$(T "$WORK/edit$i.log" nxc build -f docker "$P/webserver")")
  COLD+=("$(T "$WORK/start-new$i.log" nxc start -f docker "$P/webserver")")
  LOADS+=("$(grep -o 'loaded in [0-9.]* s' "$WORK/start-new$i.log" | grep -o '[0-9.]*' || echo -)")
  HOME=$P "$NXC" exec --project "$P" client1 -- curl -sf http://server/ | grep -q "edited for run $i" || { say "run $i: client1 did not get the edited page"; exit 1; }
  nxc stop -f docker --composition webserver >/dev/null 2>&1
  WARM+=("$(T "$WORK/start-warm$i.log" nxc start -f docker "$P/webserver")")
  grep -q "already loaded" "$WORK/start-warm$i.log" || { say "run $i: the second start loaded the image again"; exit 1; }
  nxc stop -f docker --composition webserver >/dev/null 2>&1
  if [ $skip_vm = 0 ]; then
    nxc build -f vm-ramdisk "$P/webserver" >/dev/null 2>&1
    VM+=("$(T "$WORK/start-vm$i.log" nxc start -f vm-ramdisk "$P/webserver")")
    nxc stop -f vm-ramdisk --composition webserver >/dev/null 2>&1
  fi
  say "run $i: edit rebuild ${EDIT[-1]} s, start after edit ${COLD[-1]} s (load ${LOADS[-1]} s), start ${WARM[-1]} s, vm-ramdisk ${VM[-1]:-skipped} s"
done

med() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:] if x not in ("", "-")]; print(f"{statistics.median(v):.2f}" if v else "-")' "$@"; }
IMG=$(du -m "$P/build/webserver/docker/image.tar" | cut -f1)
cat > "$OUT" <<REPORT
# docker flavour benchmarks

Generated by \`bench/docker.sh\` (part of \`make bench\`) on $(date -u +%Y-%m-%d) at $(date -u +%H:%M) UTC,
commit $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- Sources flavours || echo " (with uncommitted changes)").
Machine: $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/{print $2}') GiB RAM,
Docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'),
QEMU without KVM (TCG) for the vm-ramdisk column. Medians of $RUNS runs; composition compositions/webserver
(3 nodes), image archive ${IMG} MiB.

| measurement | median | goal | runs |
|---|---|---|---|
| rebuild after editing one role's file (system layer from the store) | $(med "${EDIT[@]}") s | < 2 s | ${EDIT[*]} |
| \`nxc start -f docker\` until ready, image already in the engine | $(med "${WARM[@]}") s | report | ${WARM[*]} |
| \`nxc start -f docker\` until ready after an edit (includes \`docker load\`) | $(med "${COLD[@]}") s | report | ${COLD[*]} |
| of which \`docker load\` | $(med "${LOADS[@]}") s | | ${LOADS[*]} |
| \`nxc start -f vm-ramdisk\` until ready (SSH), same machine | $(med "${VM[@]:-}") s | report | ${VM[*]:-skipped} |

"Ready" is the same for both: every node's agent has finished, and (docker) the role's services are
active / (vm-ramdisk) the node answers SSH with its own name. Each start after an edit is checked
(client1 fetches the edited page from server); each second start is checked not to load the image.
REPORT
say "wrote $OUT"
