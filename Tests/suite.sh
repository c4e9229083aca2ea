#!/bin/bash
# `make test`: every test of nxc, one phase after another, each timed; the suite's duration at the end.
#
#   Tests/suite.sh            (as root: the unprivileged phase creates its test users)
#
# One build configuration serves every phase: release with -enable-testing (the unit tests use
# @testable), so nothing is compiled twice. Phases after a failed one still run (one CI run tells
# about all of them) unless the build failed. NXC_FUZZ_SECONDS (default 20 here, 60 in `make fuzz`; the
# regression corpus is replayed whole either way, the bound is for new inputs) bounds each fuzz
# target. The prebuild phase fills the store the end-to-end tests share, two builds at a time.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
swift=${SWIFT:-swift}
config=(-c release -Xswiftc -enable-testing)
release=$repo/.build/release
suite_start=$(date +%s)
results=()
failed=0

phase() {
    local name=$1 start rc
    shift
    echo "━━ $name"
    start=$(date +%s)
    "$@"
    rc=$?
    results+=("$(printf '%-34s %5d s  %s' "$name" $(($(date +%s) - start)) "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")")")
    [ $rc -eq 0 ] || failed=$((failed + 1))
    return $rc
}

summary() {
    echo "━━ summary"
    printf '  %s\n' "${results[@]}"
    local total=$(($(date +%s) - suite_start))
    printf '  %-34s %5d s  (%d min %02d s)\n' "make test" $total $((total / 60)) $((total % 60))
}

build() {
    "$swift" build "${config[@]}" --build-tests || return
    # The agent that goes into images is stripped, as `make build` leaves it.
    strip "$release/nxc-agent"
}

if ! phase "build (release, tests)" build; then summary; exit 1; fi
phase "agent checks" bash Tests/agent/run.sh "$release/nxc-agent"
phase "fuzz (${NXC_FUZZ_SECONDS:-20} s a target)" bash Tests/fuzz/run.sh "${NXC_FUZZ_SECONDS:-20}"
phase "prebuild (shared store, 2 lanes)" bash Tests/prebuild.sh "$release/nxc"
phase "unit and end-to-end (XCTest)" env NXC_E2E=1 NXC_BIN="$release/nxc" "$swift" test "${config[@]}" --skip-build
phase "unprivileged build and boot" bash Tests/unprivileged/run.sh "$release"
summary
[ $failed -eq 0 ]
