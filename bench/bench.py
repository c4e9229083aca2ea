#!/usr/bin/python3
"""Helpers of bench/run.sh.

  bench.py mirror                          the Debian mirror the host's apt uses (as nxc picks it)
  bench.py packages FLAVOUR.yaml COMP.yaml flavour + composition packages, comma separated
  bench.py add-package COMP.yaml ROLE PKG  adds PKG to ROLE's packages (in place)
  bench.py report RESULTS_DIR              docs/benchmarks.md on stdout
"""
import glob
import json
import os
import re
import statistics
import sys

import yaml


def mirror():
    """Same rule as nxc's HostFacts.aptMirror: first non-security http(s) source, else deb.debian.org."""
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*"))
    found = []
    for f in files:
        try:
            text = open(f, encoding="utf-8").read()
        except OSError:
            continue
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("#"):
                continue
            if f.endswith(".sources") and line.startswith("URIs:"):
                found += line[5:].split()
            elif line.startswith("deb "):
                words = [w for w in line.split() if not (w.startswith("[") or w.endswith("]"))]
                if len(words) >= 2:
                    found.append(words[1])
    usable = [u for u in found if "security" not in u and u.startswith(("http://", "https://"))]
    return usable[0] if usable else "http://deb.debian.org/debian"


def packages(flavour_file, composition_file):
    flavour = yaml.safe_load(open(flavour_file)) or {}
    comp = yaml.safe_load(open(composition_file)) or {}
    pkgs = set(flavour.get("packages") or [])
    pkgs |= set(comp.get("packages") or [])
    for role in (comp.get("roles") or {}).values():
        pkgs |= set((role or {}).get("packages") or [])
    return ",".join(sorted(pkgs))


def add_package(composition_file, role, pkg):
    comp = yaml.safe_load(open(composition_file))
    r = comp["roles"][role]
    r["packages"] = list(r.get("packages") or []) + [pkg]
    with open(composition_file, "w") as f:
        yaml.safe_dump(comp, f, sort_keys=False, default_flow_style=False)


# --- report --------------------------------------------------------------------------------------

def load_facts(d):
    facts = {}
    for line in open(os.path.join(d, "facts")):
        k, _, v = line.rstrip("\n").partition("=")
        facts[k] = v
    return facts


def read(d, name, default=None):
    try:
        return open(os.path.join(d, name)).read().strip()
    except OSError:
        return default


def times(d, name):
    """Seconds of every run, or None when the measurement failed or was skipped."""
    files = glob.glob(os.path.join(d, name + ".json")) + glob.glob(os.path.join(d, name + ".run*.json"))
    files.sort(key=lambda p: int(re.search(r"\.run(\d+)\.json$", p).group(1)) if ".run" in p else 0)
    ts = []
    for p in files:
        ts += json.load(open(p))["results"][0]["times"]
    return ts or None


def runs_of_log(d, name):
    text = read(d, name + ".log", "")
    parts = text.split("=== run\n")
    return [p for p in parts[1:]]


STAGES = [
    ("base", r"base system: (reused|running mmdebstrap)", r"base system: built in ([\d.]+) s"),
    ("packages", r"packages: (reused|installing)", r"packages: installed in ([\d.]+) s"),
    ("initrd system", r"initrd system segment: (reused|packing)", r"initrd system segment: packed in ([\d.]+) s"),
]


def stages(run_log):
    """{'base': ('built', 115.8) or ('reused', None), ...} from one run's nxc build output."""
    out = {}
    for key, start_re, done_re in STAGES:
        m = re.search(start_re, run_log)
        if not m:
            continue
        if m.group(1) == "reused":
            out[key] = ("reused", None)
        else:
            d = re.search(done_re, run_log)
            out[key] = ("built", float(d.group(1)) if d else None)
    return out


def stage_text(st):
    parts = []
    for key, _, _ in STAGES:
        if key not in st:
            continue
        what, secs = st[key]
        parts.append(f"{key}: reused" if what == "reused" else
                     f"{key}: **built** ({secs:.1f} s)" if secs is not None else f"{key}: **built**")
    return "; ".join(parts) if parts else "(no stage lines)"


def fmt_s(x):
    if x is None:
        return "—"
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def fmt_b(n):
    if n is None:
        return "—"
    n = float(n)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def others(d, name):
    """(most other QEMU VMs seen at once while NAME was measured, start states) — "—" if unknown.
    Start states: per hyperfine call, the other VMs and CPU busy % just before it began."""
    windows, starts = [], []
    for line in (read(d, "windows", "") or "").splitlines():
        f = line.split()
        if f and f[0] == name:
            windows.append((int(f[1]) - 2, int(f[2]) + 2))
            if len(f) >= 5:
                starts.append((int(f[3]), int(f[4])))
    samples = [tuple(map(int, line.split()[:2])) for line in (read(d, "qemu-samples", "") or "").splitlines()
               if len(line.split()) >= 2]
    seen = [c for t, c in samples for a, b in windows if a <= t <= b]
    during = str(max(seen)) if seen else "—"
    busy = [int(line.split()[2]) for line in (read(d, "qemu-samples", "") or "").splitlines()
            if len(line.split()) >= 3 for a, b in windows if a + 2 <= int(line.split()[0]) <= b - 2]
    during += f" / {statistics.median(busy):.0f}%" if busy else ""
    at_start = ", ".join(f"{o} VM{'s' if o != 1 else ''}/{b}%" for o, b in starts) or "—"
    return during, at_start


def med(ts):
    return statistics.median(ts) if ts else None


def report(d):
    f = load_facts(d)
    runs = int(f.get("runs", "3"))
    T = {n: times(d, n) for n in ["baseline", "cold", "edit", "package", "noop", "start3", "start1"]}
    M = {n: med(t) for n, t in T.items()}
    logs = {n: runs_of_log(d, n) for n in T}
    out = []
    w = out.append

    def met(ok):
        return "—" if ok is None else ("**met**" if ok else "**not met**")

    def runs_row(label, name):
        ts = T[name]
        if ts is None:
            state = "failed" if os.path.exists(os.path.join(d, name + ".failed")) else "not run"
            return f"| {label} | " + " | ".join([state] + [""] * (runs - 1)) + " | — |"
        cells = " | ".join([fmt_s(t) for t in ts] + [""] * (runs - len(ts)))
        return f"| {label} | {cells} | {fmt_s(M[name])} |"

    head = "| | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | median |"
    sep = "|---|" + "---:|" * runs + "---:|"

    # Goals.
    g_cold = None if M["cold"] is None or M["baseline"] is None else M["cold"] <= M["baseline"]
    g_edit = None if M["edit"] is None else M["edit"] < 2.0
    g_pkg = None if M["package"] is None or M["cold"] is None else M["package"] < 0.25 * M["cold"]
    g_noop = None if M["noop"] is None else M["noop"] < 0.5
    g_par = None if M["start3"] is None or M["start1"] is None else M["start3"] < 2 * M["start1"]

    # Baseline sizes (per run, from the run's output).
    base_sizes = [int(m.group(1)) for r in logs["baseline"] for m in [re.search(r"^size (\d+)", r, re.M)] if m]
    base_trees = [int(m.group(1)) for r in logs["baseline"] for m in [re.search(r"^tree (\d+)", r, re.M)] if m]
    initrd = read(d, "initrd.size")
    kernel = read(d, "kernel.size")
    initrd = int(initrd) if initrd else None
    kernel = int(kernel) if kernel else None
    tar_med = med(base_sizes)

    w("# nxc benchmarks")
    w("")
    w("Generated by `make bench` (`bench/run.sh`); rerun it to refresh this file. Each figure is the")
    w(f"median of {runs} run{'s' if runs != 1 else ''} timed with hyperfine (wall clock); every run is listed. The baseline is what a")
    w("user does without nxc, as Kameleon builds Grid'5000 images: `debootstrap --variant=minbase` with the")
    w("same packages (the flavour's, the kernel among them, and the composition's), packed as tar.gz.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- date: {f.get('date')}")
    dirty = f.get("dirty", "0")
    w(f"- nxc commit (HEAD): `{f.get('commit')}`" + (f" (with {dirty} uncommitted change(s) to Sources/, Package.swift or flavours/)" if dirty not in ("", "0") else ""))
    w(f"- CPU: {f.get('cpu')}, {f.get('nproc')} cores (nproc); RAM: {f.get('ram')}")
    kvm = f.get("kvm_device")
    w(f"- VMs: no KVM: QEMU TCG (nxc's launch script asks for no accelerator; /dev/kvm is {kvm} on this machine); {f.get('qemu')}")
    w(f"- scratch filesystem: {f.get('fs')} (store entries are copied with `cp -a --reflink=auto`)")
    w(f"- tools: {f.get('hyperfine')}, debootstrap {f.get('debootstrap')}, mmdebstrap {f.get('mmdebstrap')}")
    w(f"- Debian {f.get('suite')} from the host's apt mirror {f.get('mirror')} (over the network, no local cache or proxy)")
    if f.get("nxc_bin_commit"):
        w(f"- nxc binary: `{f.get('nxc_bin')}` (file dated {f.get('nxc_built')}, sha256 {f.get('nxc_sha')}…), built from "
          f"{f.get('nxc_bin_commit')}, not from HEAD; flavours/ were read from the working tree (NXC_DATA)")
    else:
        w(f"- nxc binary: `{f.get('nxc_bin')}` (file dated {f.get('nxc_built')}, sha256 {f.get('nxc_sha')}…); the commit above is "
          "the repository's HEAD when the bench ran: `make bench` builds first, so they match unless the tree had "
          "uncommitted changes or `NXC_BIN` points to an older build")
    w(f"- composition: `compositions/webserver`, flavour `vm-ramdisk`; package set: `{f.get('packages')}`")
    total = f.get("total")
    if total:
        t = int(total)
        w(f"- one whole bench run took {t // 60} min {t % 60} s")
    w("- The machine is shared: another engineer's builds and QEMU VMs may have been running during the")
    w("  measurements (the Summary says how many other QEMU VMs ran and how busy the CPU was).")
    w("")

    O = {n: others(d, n) for n in T}
    w("## Summary")
    w("")
    w("Last two columns, the state of the machine: *at start*, the QEMU VMs of other users and the CPU busy % just "
      "before each hyperfine call (the bench waits a few minutes for a quiet machine first); *during*, the most "
      "other VMs seen at once and the median CPU busy % while measuring, sampled every 2 s. The CPU figure "
      "during a measurement includes its own work: one booting TCG VM alone keeps one of the two cores, 50%.")
    w("")
    w("| measurement | median | goal | | at start (VMs/CPU) | during (VMs / CPU) |")
    w("|---|---:|---|---|---|---:|")
    def row(label, name, goal, ok):
        during, at_start = O[name]
        return f"| {label} | {fmt_s(M[name])} | {goal} | {ok} | {at_start} | {during} |"
    w(row("baseline: debootstrap + tar.gz", "baseline", "(reference)", ""))
    w(row("cold build, empty store", "cold", f"≤ baseline ({fmt_s(M['baseline'])})", met(g_cold)))
    w(row("rebuild after editing one role's file", "edit", "< 2 s", met(g_edit)))
    quarter = fmt_s(0.25 * M["cold"]) if M["cold"] else "—"
    w(row("rebuild after adding one package", "package", f"< 25% of cold build ({quarter})", met(g_pkg)))
    w(row("no-op rebuild", "noop", "< 0.5 s", met(g_noop)))
    w(f"| initrd (kernel apart) | {fmt_b(initrd)} | beside baseline tar.gz ({fmt_b(tar_med)}) | | | |")
    w(row("`nxc start`, 3 VMs until SSH", "start3",
          f"parallel boot: < 2 × one VM ({fmt_s(2 * M['start1']) if M['start1'] else '—'})", met(g_par)))
    w(row("`nxc start`, 1 VM until SSH", "start1", "(reference)", ""))
    w("")

    def stage_rows(name):
        rows = []
        for i, r in enumerate(logs[name]):
            rows.append(f"- run {i + 1}: {stage_text(stages(r))}")
        return rows

    # 1. Baseline
    w("## 1. Baseline: debootstrap + tar.gz")
    w("")
    w(f"`debootstrap --variant=minbase --include=<packages> {f.get('suite')} DIR {f.get('mirror')}` then `tar -czf` of DIR.")
    w("")
    w(head); w(sep)
    w(runs_row("time (debootstrap + tar -czf)", "baseline"))
    def values_row(label, values, fmt):
        cells = [fmt(v) for v in values] + [""] * (runs - len(values))
        return f"| {label} | " + " | ".join(cells) + f" | {fmt(med(values)) if values else '—'} |"
    phases = []
    for r in logs["baseline"]:
        st = [float(x) for x in re.findall(r"^stamp ([\d.]+)$", r, re.M)]
        phases.append((st[1] - st[0], st[2] - st[1]) if len(st) == 3 else None)
    if any(phases):
        w(values_row("of it: debootstrap", [p[0] for p in phases if p], fmt_s))
        w(values_row("of it: tar -czf", [p[1] for p in phases if p], fmt_s))
    if base_sizes:
        w(values_row("tar.gz size", base_sizes, fmt_b))
    if base_trees:
        w(values_row("unpacked tree", base_trees, fmt_b))
    w("")

    # 2. Cold
    w("## 2. Cold build (empty store)")
    w("")
    w("`nxc build -f vm-ramdisk` with `NXC_STORE` an empty folder: mmdebstrap of the base (flavour packages),")
    w("apt of the composition's packages on a copy of it, the initrd's system segment packed, the payload")
    w("segment (agent, role files) appended.")
    w("")
    w("| | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | median | goal | |")
    w("|---|" + "---:|" * runs + "---:|---|---|")
    w(runs_row("cold build", "cold")[:-2] + f" | ≤ {fmt_s(M['baseline'])} (baseline) | {met(g_cold)} |")
    w("")
    w("Stages, as nxc printed them:")
    w("")
    out.extend(stage_rows("cold"))
    sys_tree = read(d, "system-tree.size")
    store = read(d, "store.size")
    if sys_tree or store:
        w("")
        w(f"System tree in the store: {fmt_b(sys_tree)} (baseline tree: {fmt_b(med(base_trees))}); "
          f"whole store after one cold build: {fmt_b(store)} ({(read(d, 'store.entries') or '').count(chr(10)) + 1} entries: base, system, initrd-system).")
    w("")

    # 3. Edit
    w("## 3. Rebuild after editing one role's file")
    w("")
    w("A copy of the composition, built once; before each run `index.html` (a file of role `server`) gets new")
    w("content. Warm store.")
    w("")
    w("| | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | median | goal | |")
    w("|---|" + "---:|" * runs + "---:|---|---|")
    w(runs_row("rebuild after edit", "edit")[:-2] + f" | < 2 s | {met(g_edit)} |")
    w("")
    out.extend(stage_rows("edit"))
    shipped = read(d, "edit.shipped")
    if shipped:
        w(f"- the edited `index.html` is in the new initrd's payload segment (checked by unpacking it): {shipped}")
    w("")

    # 4. Package
    w("## 4. Rebuild after adding one package (`hello` to role `client`)")
    w("")
    w("Each run starts from a store holding only a copy of the warm `*-base` entry, so the package layer and")
    w("the initrd's system segment are rebuilt every run, and the base system must be reused.")
    w("")
    w("| | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | median | goal | |")
    w("|---|" + "---:|" * runs + "---:|---|---|")
    w(runs_row("rebuild after adding hello", "package")[:-2] + f" | < 25% of cold ({quarter}) | {met(g_pkg)} |")
    w("")
    out.extend(stage_rows("package"))
    hello = read(d, "hello.installed")
    if hello:
        w(f"- `/usr/bin/hello` present in the rebuilt system: {hello}")
    w("")

    # 5. No-op
    w("## 5. No-op rebuild")
    w("")
    w("| | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | median | goal | |")
    w("|---|" + "---:|" * runs + "---:|---|---|")
    w(runs_row("no-op rebuild", "noop")[:-2] + f" | < 0.5 s | {met(g_noop)} |")
    w("")
    out.extend(stage_rows("noop"))
    w("")

    # 6. Sizes
    w("## 6. Sizes")
    w("")
    w("| artefact | size |")
    w("|---|---:|")
    w(f"| nxc initrd (zstd cpio: system segment + payload segment) | {fmt_b(initrd)} |")
    w(f"| nxc kernel (separate file) | {fmt_b(kernel)} |")
    w(f"| nxc kernel + initrd | {fmt_b((initrd or 0) + (kernel or 0)) if initrd else '—'} |")
    w(f"| baseline rootfs.tar.gz (kernel inside) | {fmt_b(tar_med)} |")
    if initrd and tar_med:
        w("")
        w(f"kernel + initrd is {100 * (initrd + (kernel or 0)) / tar_med:.0f}% of the baseline tar.gz: the ramdisk leaves out "
          "/usr/share/doc, man pages, apt lists and all but the listed kernel modules, and zstd compresses better than gzip.")
    w("")

    # 7. VMs
    w("## 7. `nxc start` until every node answers SSH")
    w("")
    w("`nxc start -f vm-ramdisk --timeout 400` of webserver (server, client1, client2), and of one VM alone")
    w("(`-r client=0`: only `server`); `nxc stop` after each run (not timed). 1536 MiB and 1 vCPU per VM.")
    w("")
    w("| | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | median | goal | |")
    w("|---|" + "---:|" * runs + "---:|---|---|")
    w(runs_row("3 VMs", "start3")[:-2] + f" | < 2 × one VM | {met(g_par)} |")
    w(runs_row("1 VM", "start1")[:-2] + " | (reference) | |")
    w("")
    spreads = []
    for name in ("start3", "start1"):
        for i, r in enumerate(logs[name]):
            ups = re.findall(r"(\S+) is up \((\d+)/(\d+), (\d+) s\)", r)
            launched = re.search(r"\[\s*([\d.]+)s\] waiting up to", r)
            if ups:
                line = f"- {name} run {i + 1}: " + ", ".join(f"{n} up at {s} s" for n, _, _, s in ups)
                if launched:
                    line += f" (all QEMU processes launched within {float(launched.group(1)):.1f} s)"
                w(line)
                if name == "start3" and len(ups) > 1:
                    spreads.append(int(ups[-1][3]) - int(ups[0][3]))
    if spreads:
        w("")
        w(f"Parallel boot: all VMs are launched before the wait begins, and within a run the three nodes answered "
          f"SSH at most {max(spreads)} s apart (a serial boot would space them by about one VM's boot time, "
          f"{fmt_s(M['start1'])}).")
    if M["start3"] and M["start1"]:
        w("")
        w(f"Ratio 3 VMs / 1 VM: {M['start3'] / M['start1']:.2f} (serial boots would give about 3; "
          f"with {f.get('nproc')} cores and TCG, fully parallel boots of 3 one-vCPU VMs give about 3/{f.get('nproc')}).")
    w("")

    # Notes on goals not met.
    notes = []
    cold_st = [stages(r) for r in logs["cold"]]
    pkg_st = [stages(r) for r in logs["package"]]

    def stage_med(sts, key):
        v = [s[key][1] for s in sts if key in s and s[key][1] is not None]
        return med(v)

    close = []   # goals met with less than 25% to spare: the same explanation, as a warning

    def judge(ok, value, limit, text):
        if ok is False:
            notes.append(text)
        elif ok and value is not None and limit and value > 0.75 * limit:
            close.append(text)

    apt_fetch = None
    m = re.search(r"Fetched (\S+ \S+) in", read(d, "system-apt-update.log", "") or "")
    if m:
        apt_fetch = m.group(1)
    b = stage_med(cold_st, "base")
    p = stage_med(cold_st, "packages")
    i = stage_med(cold_st, "initrd system")
    judge(g_cold, M["cold"], M["baseline"],
          f"**Cold build: {fmt_s(M['cold'])} against {fmt_s(M['baseline'])} for the baseline.** "
          f"Median stages: mmdebstrap of the base {fmt_s(b)}, package layer {fmt_s(p)}, initrd system segment "
          f"{fmt_s(i)}. The base dominates: like debootstrap it downloads and unpacks every .deb from the mirror, "
          "so both are bound by the network. What would help: a local .deb cache kept across builds (a persistent "
          "`/var/cache/apt/archives` given to mmdebstrap, or apt-cacher-ng).")
    judge(g_edit, M["edit"], 2.0,
          f"**File-edit rebuild: {fmt_s(M['edit'])} (goal < 2 s).** If the stages above show anything but reuse, "
          "the store key of that stage depends on the role's files and should not; otherwise see the no-op rebuild.")
    p = stage_med(pkg_st, "packages")
    i = stage_med(pkg_st, "initrd system")
    judge(g_pkg, M["package"], 0.25 * M["cold"] if M["cold"] else None,
          f"**Adding one package: {fmt_s(M['package'])} against 25% of the cold build, {quarter}.** "
          f"Median stages: package layer {fmt_s(p)}, initrd system segment {fmt_s(i)}. The package layer copies "
          "the whole base (`cp -a --reflink=auto`" + (", a full copy on ext4" if f.get("fs") == "ext4" else "") + "), runs `apt-get update` against the mirror"
          + (f" (it fetched {apt_fetch}, the Translation-en index among it)" if apt_fetch else "")
          + ", then downloads and installs every composition package again, not only `hello`; the initrd's "
          "system segment is then repacked whole. The time depends on the network, and so does the cold build "
          "it is compared with. What would help: `Acquire::Languages \"none\"` for that `apt-get update`, a .deb "
          "cache shared by the layers, an overlay (or reflinks) instead of the copy of the base.")
    judge(g_noop, M["noop"], 0.5,
          f"**No-op rebuild: {fmt_s(M['noop'])} (goal < 0.5 s).** Every stage is reused, and the time goes to what "
          "a build does even when nothing changed: the payload segment (with the 6 MB agent) is rewritten and "
          "gzipped, the 64 MB initrd is re-concatenated from the store, and kernel and initrd are hashed (sha256). "
          "It is CPU-bound, so other VMs on the machine stretch it. Keeping the previous output folder when its "
          "manifest has the same input hashes would make it near-instant.")
    judge(g_par, M["start3"], 2 * M["start1"] if M["start1"] else None,
          f"**Three VMs: {fmt_s(M['start3'])} against {fmt_s(M['start1'])} for one.** The VMs are launched in "
          f"parallel, but under QEMU TCG on {f.get('nproc')} cores three one-vCPU guests share two host cores, "
          "and other VMs on the machine compete too. KVM where /dev/kvm is usable (`-accel kvm:tcg`) would cut "
          "each boot by far.")
    for n in ["baseline", "cold", "edit", "package", "noop", "start3", "start1"]:
        if os.path.exists(os.path.join(d, n + ".failed")):
            notes.append(f"**{n} failed**: a run exited with an error; see the bench's output.")
    w("## Reading these figures")
    w("")
    if T["baseline"] and T["cold"]:
        w(f"- The baseline and the cold build both download every .deb from {f.get('mirror')}: they are bound by the "
          f"network and the mirror's caches, and vary from run to run (baseline {fmt_s(min(T['baseline']))} to "
          f"{fmt_s(max(T['baseline']))}, cold build {fmt_s(min(T['cold']))} to {fmt_s(max(T['cold']))}). Their runs "
          "alternate so that neither always pays for the first download. On another day or network the ratio differs.")
    if T["package"]:
        w("- The package-adding rebuild also goes to the mirror (`apt-get update`, then the .debs of every composition "
          "package, not only `hello`), so it varies with the network too; its goal is relative to a cold build "
          "that varies the same way.")
    w("- The rebuilds that do not touch the network (file edit, no-op) are short and CPU-bound: on a quiet machine "
      "they vary by about a tenth of a second, the first run can be slower (cold page cache), and other VMs or "
      "builds on the machine can double them.")
    if T["start3"]:
        w("- VM boots are CPU-bound under TCG: any other QEMU process or build on this 2-core machine (see the "
          "Summary's last columns) slows them. A 3-VM run much slower than the others usually means another VM was booting.")
    w("")
    if notes:
        w("## Goals not met")
        w("")
        for n in notes:
            w("- " + n)
        w("")
    if close:
        w("## Goals met with a small margin (less than 25% to spare)")
        w("")
        for n in close:
            w("- " + n)
        w("")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) >= 2 and argv[1] == "mirror":
        print(mirror())
    elif len(argv) == 4 and argv[1] == "packages":
        print(packages(argv[2], argv[3]))
    elif len(argv) == 5 and argv[1] == "add-package":
        add_package(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == "report":
        sys.stdout.write(report(argv[2]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
