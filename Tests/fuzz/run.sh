#!/bin/bash
# Fuzzes every parser of untrusted bytes for a bounded time; `make test` runs it.
#
#   Tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS (default 60) per target; 0 only builds and replays the regressions.
# Targets (default: all): composition, lock, role-distribution, flavour, agent (see Fuzz/).
#
# 1. Builds the targets (Tests/fuzz/build.sh, about 25 s).
# 2. Replays every kept input under Tests/fuzz/regressions/TARGET/, each in its own process:
#    none may crash, time out or run out of memory. An input listed in that folder's
#    `known-crashes` (FILE, then why) is a defect not yet fixed: reported, not counted,
#    until the fix lands and the line is removed.
# 3. Fuzzes each target for SECONDS (NXC_FUZZ_JOBS at a time, default one per CPU), starting from Tests/fuzz/seeds/TARGET/, the
#    repository's own inputs of that kind and the regressions. The corpus it grows is in
#    .build-fuzz/corpus/TARGET (not in git), emptied at each run so that every run spends its
#    time fuzzing, not replaying what earlier runs kept; NXC_FUZZ_CORPUS=DIR keeps the corpora
#    in DIR/TARGET across runs instead (for long runs by hand). A crashing input is written to
#    the findings folder the run prints (NXC_FUZZ_FINDINGS, default .build-fuzz/findings/TARGET/):
#    copy it to Tests/fuzz/regressions/TARGET/ with a README line and commit it.
#
# Exit status: 0 if nothing crashed; 1 if something did (the input's path is printed);
# 2 if the targets could not be built.
set -uo pipefail
shopt -s nullglob
# All in one function, read before it runs: editing this file during a run cannot break the run.
main() {

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
seconds=${1:-60}
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: Tests/fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2; }
all_targets=(composition lock role-distribution flavour agent)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "unknown target '$t' (targets: ${all_targets[*]})" >&2; exit 2; }
done

out=${NXC_FUZZ_BUILD:-$root/.build-fuzz}
export NXC_FUZZ_BUILD=$out
findings_root=${NXC_FUZZ_FINDINGS:-$out/findings}
here=Tests/fuzz

# Per target: the longest input libFuzzer makes, and its dictionary. Short inputs run fast; deep
# nesting needs no room, as the composition target checks the depth pre-scan at a depth of 4.
declare -A max_len=([composition]=4096 [lock]=4096 [role-distribution]=4096 [flavour]=4096 [agent]=4096)
declare -A dict=([composition]=yaml [lock]=yaml [role-distribution]=yaml [flavour]=yaml [agent]=json)

# Limits for every run of a target: 2 GiB of memory, 10 s for one input (a hang is a finding).
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10)
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0"
# The Swift runtime's own crash backtracer reads the crashed stack from another thread, which
# AddressSanitizer reports instead of the real failure (a trap such as a force unwrap of nil).
export SWIFT_BACKTRACE=enable=no

mkdir -p "$out/tmp"
"$here/build.sh" || { echo "fuzz: the targets did not build" >&2; exit 2; }

failures=0
known=0

# known_reason TARGET FILE: the reason a kept input is listed as a known crash, or nothing.
known_reason() {
    local list=$here/regressions/$1/known-crashes
    [ -f "$list" ] || return 0
    awk -v f="$2" '$1 == f { $1 = ""; sub(/^ /, ""); print; exit }' "$list"
}

# Step 2: replay.
for t in "${targets[@]}"; do
    dir=$here/regressions/$t
    [ -d "$dir" ] || continue
    for input in "$dir"/*; do
        name=$(basename "$input")
        case $name in README*|known-crashes) continue ;; esac
        log=$out/tmp/replay-$t-$name.log
        reason=$(known_reason "$t" "$name")
        if "$out/bin/fuzz-$t" "${limits[@]}" "$input" < /dev/null > "$log" 2>&1; then
            if [ -n "$reason" ]; then
                echo "fuzz: $t: $input no longer crashes: remove it from $dir/known-crashes"
            fi
        elif [ -n "$reason" ]; then
            known=$((known + 1))
            echo "fuzz: $t: KNOWN CRASH, not fixed yet ($reason): $input"
        else
            failures=$((failures + 1))
            echo "fuzz: $t: CRASH replaying $input"
            grep -E "ERROR|SUMMARY|^ *#[0-9] " "$log" | head -12
            echo "      (full log: $log)"
        fi
    done
done

# seed_dir TARGET: a fresh folder with every seed of the target, named by content.
seed_dir() {
    local t=$1 dir=$out/seeds/$1 f reason
    rm -rf "$dir" && mkdir -p "$dir"
    local sources=("$here/seeds/$t"/*)
    case $t in
        composition)
            sources+=(compositions/*/composition.yaml templates/*/composition.yaml
                      Tests/NXCCompositionTests/BadCompositions/*.yaml Tests/EndToEndTests/Fixtures/*/composition.yaml) ;;
        lock)
            sources+=(compositions/*/composition.lock templates/*/composition.lock
                      Tests/NXCCompositionTests/BadCompositions/*.lock) ;;
        flavour)
            sources+=(flavours/*.yaml Tests/NXCFlavoursTests/BadFlavours/*.yaml) ;;
    esac
    for f in "$here/regressions/$t"/*; do
        case $(basename "$f") in README*|known-crashes) continue ;; esac
        reason=$(known_reason "$t" "$(basename "$f")")
        [ -n "$reason" ] || sources+=("$f")
    done
    # Longer inputs (the oversized and deeply nested ones) would only be cut and slow the start:
    # the regressions are replayed whole above.
    for f in "${sources[@]}"; do
        [ -f "$f" ] && [ "$(stat -c %s "$f")" -le "${max_len[$t]}" ] && cp "$f" "$dir/$(sha1sum < "$f" | cut -c1-40)"
    done
    echo "$dir"
}

# Step 3: fuzz. NXC_FUZZ_JOBS targets at a time (default: one per CPU), each on its own core for
# its whole SECONDS; one lane's output is written when the target ends.
# fuzz_one TARGET: fuzzes it, writes its summary line to $out/tmp/summary-TARGET, exits 1 on a crash.
fuzz_one() {
    local t=$1 corpus findings seeds log start status elapsed execs units result
    if [ -n "${NXC_FUZZ_CORPUS:-}" ]; then
        corpus=$NXC_FUZZ_CORPUS/$t
    else
        corpus=$out/corpus/$t
        rm -rf "$corpus"
    fi
    findings=$findings_root/$t
    mkdir -p "$corpus" "$findings"
    seeds=$(seed_dir "$t")
    log=$out/tmp/fuzz-$t.log
    echo "fuzz: $t for $seconds s (seeds: $(ls "$seeds" | wc -l), corpus: $corpus, findings: $findings)"
    start=$SECONDS
    "$out/bin/fuzz-$t" "${limits[@]}" -max_total_time="$seconds" -max_len="${max_len[$t]}" \
        -dict="$here/dict/${dict[$t]}.dict" -use_value_profile=1 -print_final_stats=1 \
        -artifact_prefix="$findings/" "$corpus" "$seeds" < /dev/null > "$log" 2>&1
    status=$?
    elapsed=$((SECONDS - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    units=$(ls "$corpus" | wc -l)
    if [ $status -eq 0 ]; then
        result=ok
    else
        result="CRASH (exit $status)"
        echo "fuzz: $t: CRASH; the input:"
        sed -n 's/.*Test unit written to \(.*\)$/      \1/p' "$log"
        grep -E "ERROR|SUMMARY|^ *#[0-9] " "$log" | head -16
        echo "      (full log: $log)"
    fi
    printf '%-18s %10s execs in %4s s  corpus %5s  %s\n' "$t" "${execs:-?}" "$elapsed" "$units" "$result" > "$out/tmp/summary-$t"
    [ $status -eq 0 ]
}

if [ "$seconds" -gt 0 ]; then
    jobs_max=${NXC_FUZZ_JOBS:-$(nproc)}
    [[ "$jobs_max" =~ ^[1-9][0-9]*$ ]] || { echo "NXC_FUZZ_JOBS must be a positive number" >&2; exit 2; }
    for t in "${targets[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
        rm -f "$out/tmp/summary-$t"
        fuzz_one "$t" &
    done
    wait
    echo "fuzz: summary (${jobs_max} at a time)"
    for t in "${targets[@]}"; do
        line=$(cat "$out/tmp/summary-$t" 2>/dev/null || echo "$t: no summary (the lane died)")
        case $line in *" ok") ;; *) failures=$((failures + 1)) ;; esac
        printf '  %s\n' "$line"
    done
fi

[ $known -eq 0 ] || echo "fuzz: $known known crash(es) not fixed yet (listed in Tests/fuzz/regressions/*/known-crashes)"
if [ $failures -gt 0 ]; then
    echo "fuzz: $failures failure(s); new crashing inputs are in $findings_root"
    exit 1
fi
echo "fuzz: no crash"
}
main "$@"
