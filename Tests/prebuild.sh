#!/bin/bash
# Fills the store the end-to-end tests share with the layers they build, in two lanes at once:
# mmdebstrap and dpkg use about one core each, so two builds side by side take little longer than
# one. The tests then reuse the layers (their builds print "reused") and still check everything
# they checked before; a layer missing here is built by the test that needs it.
#
#   Tests/prebuild.sh NXC_BINARY
#
# Each build's output goes to a log in a temporary folder, shown when that build fails.
set -uo pipefail
nxc=${1:?usage: Tests/prebuild.sh NXC_BINARY}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/nxc-prebuild.XXXXXX)
# The store the tests use (Store.defaultRoot), fixed before each build's HOME is its project folder:
# without it the builds would fill a store under that folder, removed at the end.
export NXC_STORE=${NXC_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/nxc}
trap 'rm -rf "$work"' EXIT

# A project folder for SOURCE (a composition folder, copied so that its lock is written there, or
# template:NAME), made once per lane entry.
project() {
    local source=$1 dir=$2
    [ -d "$dir" ] && return 0
    case $source in
        template:*) "$nxc" init -t "${source#template:}" "$dir" >/dev/null ;;
        *) mkdir -p "$dir" && cp -r "$repo/$source/." "$dir/" ;;
    esac
}

# lane NAME SOURCE:FLAVOUR…: the builds one after another; exit status: how many failed.
lane() {
    local name=$1 failed=0 source flavour dir start rc log
    shift
    for item in "$@"; do
        source=${item%:*}
        flavour=${item##*:}
        dir=$work/$name/$(basename "${source#template:}")
        log=$work/$name-$(basename "${source#template:}")-$flavour.log
        start=$(date +%s)
        if project "$source" "$dir"; then
            HOME=$dir "$nxc" build -f "$flavour" --project "$dir" >"$log" 2>&1
            rc=$?
        else
            rc=1
        fi
        printf '  [lane %s] %-40s %4d s  %s\n' "$name" "${source#template:} ($flavour)" $(($(date +%s) - start)) \
            "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")"
        if [ $rc -ne 0 ]; then
            failed=$((failed + 1))
            tail -n 30 "$log" | sed 's/^/      /'
        fi
    done
    return $failed
}

# Lane a: the vm-ramdisk base and the compositions booted in VMs, then the g5k-image base (stockhost's
# is the system pxe --install writes to the store's disk).
lane a compositions/webserver:vm-ramdisk Tests/EndToEndTests/Fixtures/stockhost:vm-ramdisk \
    compositions/webserver:g5k-image Tests/EndToEndTests/Fixtures/stockhost:g5k-image &
pid_a=$!
# Lane b: the docker base and what runs in containers, then the g5k-ramdisk base (nfs-store and the pxe flavours share it),
# then what lane a's vm-ramdisk base serves (the two lanes take about as long).
lane b compositions/webserver:docker template:basic:docker Tests/EndToEndTests/Fixtures/services:docker \
    compositions/webserver:nspawn template:slurm:nspawn \
    compositions/webserver:g5k-ramdisk compositions/webserver:nfs-store compositions/webserver:pxe-nfs-store \
    Tests/EndToEndTests/Fixtures/stockhost:pxe Tests/EndToEndTests/Fixtures/services:vm-ramdisk \
    template:nfs:vm-ramdisk template:slurm:vm-ramdisk &
pid_b=$!
failed=0
wait $pid_a || failed=$((failed + $?))
wait $pid_b || failed=$((failed + $?))
[ $failed -eq 0 ] || echo "prebuild: $failed build(s) failed (the tests that need them build and report them again)"
exit $failed
