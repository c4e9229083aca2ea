#!/bin/bash
# Builds the libFuzzer targets (Fuzz/*) with swiftc and clang directly, not SwiftPM:
# only the sources a parser needs are compiled, instrumented for coverage and with
# AddressSanitizer, so that the normal `swift build` stays untouched and this build
# stays short (no swift-crypto, no libarchive).
#
#   Tests/fuzz/build.sh     -> .build-fuzz/bin/fuzz-{composition,lock,role-distribution,flavour,agent}
#
# NXC_FUZZ_BUILD=DIR changes the output folder; NXC_FUZZ_OPT=-O builds optimised code
# (more executions per second, longer build). Needs SwiftPM's checkout of Yams
# (.build/checkouts, made by any `swift build`; `swift package resolve` is run if absent),
# libjansson-dev and libarchive-dev.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${NXC_FUZZ_BUILD:-$root/.build-fuzz}
opt=${NXC_FUZZ_OPT:--Onone}
cd "$root"

yams=.build/checkouts/Yams/Sources
if [ ! -d "$yams/Yams" ]; then
    echo "fuzz build: $yams missing; running swift package resolve"
    swift package resolve
fi
[ -d "$yams/Yams" ] || { echo "fuzz build: no Yams checkout under .build/checkouts" >&2; exit 2; }

# The sources each fuzzed parser needs from its module, besides whole modules. When a parser
# starts using another file of its module, add that file here (the build error names the symbol).
build_sources=(Sources/NXCBuild/LockFile.swift Sources/NXCBuild/LockFile+Parse.swift Sources/NXCBuild/DebianRecords.swift
               Sources/NXCBuild/BuildError.swift)
deployment_sources=(Sources/NXCDeployment/RoleDistribution.swift Sources/NXCDeployment/DeployError.swift
                    Sources/NXCDeployment/HostList.swift)
deploy_sources=(Sources/NXCDeploy/Kexec/DeploymentServer.swift)
flavour_sources=(Sources/NXCFlavours/Flavour+Parse.swift Sources/NXCFlavours/FlavourParser.swift
                 Sources/NXCFlavours/FlavourParser+Fields.swift Sources/NXCFlavours/Flavour.swift
                 Sources/NXCFlavours/FlavourRules.swift Sources/NXCFlavours/ImagePayload.swift
                 Sources/NXCFlavours/FlavourSettings.swift Sources/NXCFlavours/Ramdisk/RamdiskSettings.swift
                 Sources/NXCFlavours/Tarball/TarballSettings.swift Sources/NXCFlavours/Ramdisk/DiskInstaller.swift)
agent_sources=()
for f in Sources/nxc-agent/*.swift; do
    # main.swift holds the agent's top-level code; libFuzzer brings its own main.
    [ "$(basename "$f")" = main.swift ] || agent_sources+=("$f")
done

obj=$out/obj
mod=$out/modules
bin=$out/bin
mkdir -p "$obj" "$mod" "$bin"

swift_flags=(-wmo "$opt" -gline-tables-only -parse-as-library -sanitize=fuzzer,address
             -I "$mod" -I "$yams/CYaml/include" -I Sources/CJansson -I Sources/CArchive)

# module NAME SOURCES...: one object and one .swiftmodule per module.
module() {
    local name=$1; shift
    swiftc "${swift_flags[@]}" -module-name "$name" -emit-module -emit-module-path "$mod/$name.swiftmodule" \
        -c "$@" -o "$obj/$name.o" 2> "$obj/$name.log" || { cat "$obj/$name.log" >&2; echo "fuzz build: module $name failed" >&2; return 1; }
}

# The clang of the Swift toolchain: its sanitizer instrumentation must match the runtime that
# swiftc links (a distribution's clang of another version may be first in PATH).
clang=$(dirname "$(readlink -f "$(command -v swiftc)")")/clang
[ -x "$clang" ] || clang=clang

start=$SECONDS
# libyaml (Yams's C part): instrumented too, the fuzzer must see its branches.
cyaml_objects=()
pids=()
for c in "$yams"/CYaml/src/*.c; do
    o=$obj/cyaml-$(basename "$c" .c).o
    "$clang" -c -O1 -gline-tables-only -fsanitize=fuzzer-no-link,address -DYAML_DECLARE_EXPORT \
        -I "$yams/CYaml/include" "$c" -o "$o" &
    pids+=($!)
    cyaml_objects+=("$o")
done
for pid in "${pids[@]}"; do wait "$pid" || { echo "fuzz build: compiling libyaml failed" >&2; exit 1; }; done
# SWIFT_PACKAGE: Yams imports CYaml only when built as a package.
module Yams -DSWIFT_PACKAGE "$yams"/Yams/*.swift
module NXCNames Sources/NXCNames/*.swift
# -enable-testing: the composition target reads an internal limit of YAMLLimits, the
# role-distribution target calls the deployment server's internal request parser.
module NXCComposition -enable-testing Sources/NXCComposition/*.swift
module NXCBuild "${build_sources[@]}"
module NXCDeployment -enable-testing "${deployment_sources[@]}"
module NXCDeploy -enable-testing "${deploy_sources[@]}"
module NXCArchive Sources/NXCArchive/*.swift
module NXCFlavours "${flavour_sources[@]}"

common=("${cyaml_objects[@]}" "$obj/Yams.o" "$obj/NXCNames.o" "$obj/NXCComposition.o")
# target NAME OBJECTS/SOURCES...: links one fuzzer binary.
target() {
    local name=$1; shift
    swiftc "${swift_flags[@]}" -module-name "Fuzz_${name//-/_}" "$@" -o "$bin/fuzz-$name" 2> "$obj/fuzz-$name.log" \
        || { cat "$obj/fuzz-$name.log" >&2; echo "fuzz build: target $name failed" >&2; return 1; }
}
target composition Fuzz/Composition/*.swift "${common[@]}"
target lock Fuzz/Lock/*.swift "${common[@]}" "$obj/NXCBuild.o"
target role-distribution Fuzz/RoleDistribution/*.swift "${common[@]}" "$obj/NXCDeployment.o" "$obj/NXCDeploy.o"
# A start method's settings type is compiled in beside the harness (NXCDeploy is not built here).
target flavour Fuzz/Flavour/*.swift Sources/NXCDeploy/Qemu/QemuSettings.swift "${common[@]}" "$obj/NXCArchive.o" "$obj/NXCFlavours.o" -larchive
# The agent's types are internal: the harness joins the agent's own module.
target agent Fuzz/Agent/*.swift "${agent_sources[@]}" "$obj/NXCNames.o" -ljansson
echo "fuzz build: 5 targets in $bin ($((SECONDS - start)) s, $opt)"
