#!/usr/bin/env bash
# tests/gpu/run.sh — build sinkhorn with the CUDA backend and run the WHOLE ctest suite on a GPU
# machine lent by the device tool; logs and a summary table go to $OUT.
#
# Why two steps: the device image has CUDA, CMake, ninja, g++ and PyTorch, but not the Debian
# packages sinkhorn builds against (OpenMPI, OpenBLAS, Boost.program_options, GoogleTest,
# nlohmann-json, toml++), and it cannot reach any package registry. So the packages travel with
# the working tree as .deb files, fetched here and unpacked there.
#
#   1. HERE (the Debian dev machine, with apt), once per change of launch/scripts/setup.sh:
#        bash tests/gpu/run.sh prepare
#      - reads the package list from launch/scripts/setup.sh (minus the toolchain and python),
#      - resolves its runtime closure (apt-cache depends; toolchain, base-system and extra -dev
#        packages left out), `apt-get download`s it into .gpu-deps/debs/ (~31 MB),
#      - records the update-alternatives links those packages need (libopenblas.so, mpicxx,
#        mpirun, the mpi include dir) in .gpu-deps/alternatives.txt, since dpkg -x makes none,
#      - adds /.gpu-deps/ to .git/info/exclude (ignored, so it travels only when carried).
#   2. ON THE DEVICE, through the device tool's run (see tests/gpu/README.md):
#        run(command="bash tests/gpu/run.sh", carry=[".gpu-deps"], timeout_s=600)
#      - unpacks every .deb (dpkg-deb -x, or ar + tar) into a staging root, folds /lib, /bin, /sbin
#        into /usr (merged-usr images), and copies it into / WITHOUT overwriting any existing file
#        (cp -an): nothing of the image is replaced, only missing files are added; then creates
#        the recorded alternatives links where missing and runs ldconfig,
#      - configures build-gpu/ (SK_CUDA=ON, sm_90 only: H100/H200) and builds with all cores,
#      - runs ctest (OpenMPI allowed to run as root, shared-memory transport only),
#      - writes $OUT/env.txt, build.log, ctest.log, ctest-junit.xml, summary.txt (and with
#        SK_GPU_SANITIZE=1 also sanitizer.log: compute-sanitizer memcheck over the GPU suite).
#
# Knobs (environment): SK_CTEST_ARGS  extra ctest arguments, e.g. "-L gpu" or "-R CudaVsCpu"
#                      SK_GPU_ARCHS   CUDA architectures (default 90)
#                      SK_GPU_SANITIZE=1  also run compute-sanitizer on tests/gpu
#                      SK_GPU_JOBS    build and ctest parallelism (default: nproc, ctest half)
# Arguments after `run` go to ctest as well. Exit status: ctest's (or 2 for a failed setup/build).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2
deps=.gpu-deps

die() {
  echo "run.sh: $*" >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------
# step 1: on the dev machine
# ---------------------------------------------------------------------------------------------
prepare() {
  command -v apt-get >/dev/null && command -v apt-cache >/dev/null || die "prepare needs apt (a Debian machine)"
  [[ $(uname -m) == x86_64 ]] || die "prepare must run on x86_64 (the device machine's architecture)"
  local exclude=.git/info/exclude
  if [[ -d .git ]]; then
    mkdir -p .git/info
    grep -qxF "/$deps/" "$exclude" 2>/dev/null || echo "/$deps/" >>"$exclude"
  fi
  # Packages of launch/scripts/setup.sh, without the toolchain (the image has its own) and python.
  local pkgs
  pkgs=$(sed -n '/^PKGS=(/,/^)/p' launch/scripts/setup.sh | sed -e 's/#.*//' -e 's/PKGS=(//' -e 's/)//' | tr -s ' \t' '\n' |
    grep -vE '^(|build-essential|cmake|ninja-build|pkg-config|googletest|python3.*)$')
  [[ -n $pkgs ]] || die "no package list found in launch/scripts/setup.sh"
  if ! apt-cache policy libopenmpi-dev 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq || die "apt-get update failed"
  fi
  echo "prepare: resolving the closure of:" $pkgs
  local list
  list=$(python3 - $pkgs <<'PY'
import re, subprocess, sys
roots = sys.argv[1:]
# Installed packages' priority: required/important/essential ones are on any Debian/Ubuntu image.
prio = {}
for line in subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Priority}\t${Essential}\n"],
                           capture_output=True, text=True).stdout.splitlines():
    p, pr, es = (line.split("\t") + ["", ""])[:3]
    prio[p.split(":")[0]] = (pr, es)
# Toolchain and base system (the image has them) and what OpenMPI/hwloc only recommend in practice
# (ssh for remote ranks, X11/OpenCL/ICU for hwloc plugins, a Fortran compiler).
deny = re.compile(r"^(gcc|g\+\+|cpp|binutils|libc6|libc-dev-bin|libc-bin|linux-libc-dev|libstdc\+\+|libgcc|perl|"
                  r"libperl|python3|debconf|dpkg|install-info|libcrypt-dev|libnsl-dev|libtirpc-dev|rpcsvc-proto|"
                  r"lsb-base|sensible-utils|tzdata|ucf|adduser|passwd|init-system-helpers|mount|util-linux|systemd|"
                  r"libsystemd|udev|libudev1|zlib1g$|libzstd1|liblzma5|libbz2|libselinux|libpcre|libssl3|openssl|"
                  r"ca-certificates|libjs-|gfortran|openssh|automake|autoconf|m4$|libhwloc-plugins|ocl-icd|"
                  r"libxnvctrl|libx11|libxcb|libxau|libxdmcp|libxext|libicu|libxml2|libfido2|libedit2|libgssapi|"
                  r"libkrb5|libk5crypto|libcom-err|libkeyutils|libcbor|googletest$|libgmp|libisl|libmpc|libmpfr)")
# -dev packages: only the requested ones and those holding headers we include.
keep_dev = {"libopenblas-pthread-dev", "libboost-program-options1.74-dev", "libboost1.74-dev"}

def deps(p):
    out = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                          "--no-breaks", "--no-replaces", "--no-enhances", p],
                         capture_output=True, text=True).stdout.splitlines()
    res, i, chosen = [], 0, False
    while i < len(out):
        m = re.match(r"^ (\|| )(Pre)?Depends: (.*)$", out[i])
        if not m:
            i += 1
            continue
        alt, name = m.group(1) == "|", m.group(3)
        provs, j = [], i + 1
        while j < len(out) and out[j].startswith("    "):
            provs.append(out[j].strip())
            j += 1
        cand = (provs[0] if provs else None) if name.startswith("<") else name
        if not chosen and cand:  # first satisfiable alternative of an a | b | c group
            res.append(cand)
            chosen = True
        if not alt:
            chosen = False
        i = j
    return res

seen, order, queue = set(), [], list(roots)
while queue:
    p = queue.pop(0).split(":")[0]
    if p in seen:
        continue
    seen.add(p)
    pr, es = prio.get(p, ("", ""))
    if p not in roots and (deny.match(p) or pr in ("required", "important") or es == "yes"):
        continue
    order.append(p)
    for d in deps(p):
        if d.endswith("-dev") and d not in roots and d not in keep_dev:
            continue
        queue.append(d)
print(" ".join(order))
PY
) || die "resolving the package closure failed"
  rm -rf "$deps/debs"
  mkdir -p "$deps/debs"
  echo "prepare: downloading:" $list
  (cd "$deps/debs" && apt-get download -qq $list) || die "apt-get download failed"
  # update-alternatives links whose targets these packages ship (dpkg -x creates none of them).
  : >"$deps/alternatives.txt"
  local name
  for name in $(update-alternatives --get-selections | awk '{print $1}'); do
    update-alternatives --query "$name" 2>/dev/null | python3 -c '
import sys
txt = sys.stdin.read().split("\n\n")
head = txt[0].splitlines()
links, value = {}, None
in_slaves = False
for l in head:
    if l.startswith("Link: "): links["__master__"] = l[6:].strip()
    elif l.startswith("Value: "): value = l[7:].strip()
    elif l.startswith("Slaves:"): in_slaves = True
    elif in_slaves and l.startswith(" "):
        n, p = l.split(); links[n] = p
    else: in_slaves = False
if not value or value == "none": sys.exit(0)
targets = {"__master__": value}
for block in txt[1:]:
    ls = block.splitlines()
    if not ls or ls[0] != "Alternative: " + value: continue
    in_slaves = False
    for l in ls:
        if l.startswith("Slaves:"): in_slaves = True
        elif in_slaves and l.startswith(" "):
            n, p = l.split(); targets[n] = p
for n, link in links.items():
    if n in targets: print(link, targets[n])
'
  done | while read -r link target; do
    owner=$(dpkg -S "$target" 2>/dev/null | head -1 | cut -d: -f1)
    [[ -n $owner ]] && [[ " $list " == *" $owner "* ]] && echo "$link $target"
  done >>"$deps/alternatives.txt"
  { echo "prepared $(date -u +%FT%TZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"; echo "packages: $list"; } \
    >"$deps/MANIFEST"
  echo "prepare: $(ls "$deps/debs" | wc -l) packages, $(du -sh "$deps" | cut -f1) in $deps/;" \
    "$(wc -l <"$deps/alternatives.txt") alternatives links"
  echo "prepare: now call the device tool: run(command=\"bash tests/gpu/run.sh\", carry=[\"$deps\"], timeout_s=600)"
}

# ---------------------------------------------------------------------------------------------
# step 2: on the GPU machine
# ---------------------------------------------------------------------------------------------
install_deps() {
  [[ -d $deps/debs ]] || die "$deps/debs is missing: run 'bash tests/gpu/run.sh prepare' here and carry $deps"
  [[ $(id -u) -eq 0 ]] || die "installing the carried packages needs root (the device runs commands as root)"
  local stage=/tmp/sk-deps-root deb
  rm -rf "$stage"
  mkdir -p "$stage"
  for deb in "$deps"/debs/*.deb; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$deb" "$stage" || die "cannot unpack $deb"
    else
      local tmp
      tmp=$(mktemp -d)
      (cd "$tmp" && ar x "$root/$deb" && tar -xf data.tar.* -C "$stage") || die "cannot unpack $deb (no dpkg-deb)"
      rm -rf "$tmp"
    fi
  done
  # merged-usr: /lib, /bin, /sbin of the packages go under /usr (where the image's are links).
  local d
  for d in lib lib64 bin sbin; do
    if [[ -d $stage/$d && ! -L $stage/$d ]]; then
      mkdir -p "$stage/usr/$d"
      cp -a "$stage/$d/." "$stage/usr/$d/" && rm -rf "${stage:?}/$d"
    fi
  done
  # Add, never replace: files already in the image win.
  cp -an "$stage/." / 2>>"$OUT/build.log" || echo "run.sh: some files were not copied (see build.log)" >&2
  local link target
  while read -r link target; do
    [[ -z $link ]] && continue
    if [[ ! -e $link && ! -L $link ]]; then
      mkdir -p "$(dirname "$link")"
      ln -s "$target" "$link"
    fi
  done <"$deps/alternatives.txt"
  printf '%s\n' /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/x86_64-linux-gnu/openmpi/lib \
    >/etc/ld.so.conf.d/zz-sinkhorn-deps.conf
  ldconfig
}

summary() {  # build dir, junit file, ctest log -> table on stdout
  python3 - "$@" <<'PY'
import collections, json, os, re, subprocess, sys
import xml.etree.ElementTree as ET
build, junit, log = sys.argv[1:4]
labels = {}
try:
    info = json.loads(subprocess.run(["ctest", "--test-dir", build, "--show-only=json-v1"],
                                     capture_output=True, text=True).stdout)
    for t in info.get("tests", []):
        ls = []
        for p in t.get("properties", []):
            if p.get("name") == "LABELS":
                ls = p.get("value", [])
        labels[t["name"]] = ls or ["(no label)"]
except Exception as e:  # labels are a nicety
    print(f"(labels unavailable: {e})")
results = {}
if os.path.exists(junit) and os.path.getsize(junit) > 0:
    for tc in ET.parse(junit).getroot().iter("testcase"):
        st = tc.get("status", "")
        if tc.find("failure") is not None or tc.find("error") is not None or st == "fail":
            r = "failed"
        elif tc.find("skipped") is not None or st in ("notrun", "disabled"):
            r = "skipped"
        else:
            r = "passed"
        results[tc.get("name")] = r
else:  # fall back to ctest's console lines: "12/340 Test  #12: name ....   Passed    0.01 sec"
    for line in open(log, errors="replace"):
        m = re.search(r"Test +#\d+: (\S+) \.+\s*(.*?)\s+[\d.]+ sec", line)
        if m:
            s = m.group(2)
            results[m.group(1)] = "passed" if s == "Passed" else ("skipped" if "Skipped" in s else "failed")
table = collections.OrderedDict()
def add(label, r):
    row = table.setdefault(label, collections.Counter())
    row[r] += 1
    row["total"] += 1
for name, r in sorted(results.items()):
    add("ALL", r)
    for l in labels.get(name, ["(no label)"]):
        add(l, r)
w = max([len(k) for k in table] + [5])
print(f"{'label':<{w}}  {'total':>6} {'passed':>7} {'failed':>7} {'skipped':>8}")
for k, c in table.items():
    print(f"{k:<{w}}  {c['total']:>6} {c['passed']:>7} {c['failed']:>7} {c['skipped']:>8}")
failed = [n for n, r in sorted(results.items()) if r == "failed"]
if failed:
    print(f"\nfailed ({len(failed)}):")
    for n in failed[:60]:
        print("  " + n)
    if len(failed) > 60:
        print(f"  ... and {len(failed) - 60} more (ctest.log)")
if not results:
    print("no test results found (see ctest.log)")
PY
}

run_device() {
  OUT=${OUT:-$root/gpu-out}
  mkdir -p "$OUT"
  local jobs=${SK_GPU_JOBS:-$(nproc)}
  local build=build-gpu
  {
    echo "== $(date -u +%FT%TZ) $(uname -a)"
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    echo "== tools"
    for t in nvcc g++ cmake ctest ninja python3 compute-sanitizer; do
      printf '%-18s %s\n' "$t" "$(command -v "$t" || echo missing)"
    done
    /usr/local/cuda/bin/nvcc --version 2>&1 | tail -2
    g++ --version 2>&1 | head -1
    cmake --version 2>&1 | head -1
    [[ -f $deps/MANIFEST ]] && cat "$deps/MANIFEST"
  } >"$OUT/env.txt" 2>&1
  command -v g++ >/dev/null || die "no g++ on this machine (nvcc needs a host compiler)"
  command -v cmake >/dev/null || die "no cmake on this machine"
  : >"$OUT/build.log"
  echo "run.sh: installing carried packages"
  install_deps >>"$OUT/build.log" 2>&1 || die "package setup failed (build.log)"

  # OpenMPI on a single machine, as root, inside a VM: shared memory only, oversubscription allowed.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
  export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
  export OMPI_MCA_plm_rsh_agent=false
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

  echo "run.sh: configuring and building ($jobs jobs)"
  local ninja_gen=()
  command -v ninja >/dev/null && ninja_gen=(-G Ninja)
  local nvcc=/usr/local/cuda/bin/nvcc
  [[ -x $nvcc ]] || nvcc=$(command -v nvcc || true)
  [[ -n $nvcc ]] || die "no nvcc on this machine"
  # (CMAKE_POLICY_VERSION_MINIMUM: CMake 4 refuses package config files of Debian 12 that declare
  # compatibility with CMake < 3.5; older CMake ignores the variable.)
  if ! cmake -S . -B "$build" "${ninja_gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSK_CUDA=ON \
    -DSK_CUDA_ARCHS="${SK_GPU_ARCHS:-90}" -DCMAKE_CUDA_COMPILER="$nvcc" \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >>"$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"
    echo "BUILD FAILED (configure): see $OUT/build.log" | tee "$OUT/summary.txt"
    exit 2
  fi
  if ! cmake --build "$build" -j "$jobs" >>"$OUT/build.log" 2>&1; then
    grep -E "error|Error|FAILED" "$OUT/build.log" | head -40
    echo "BUILD FAILED: see $OUT/build.log" | tee "$OUT/summary.txt"
    exit 2
  fi
  grep -c "warning" "$OUT/build.log" | xargs -I{} echo "run.sh: build done ({} warning lines in build.log)"

  echo "run.sh: running ctest"
  local cjobs=$(((jobs + 1) / 2))
  # shellcheck disable=SC2086
  ctest --test-dir "$build" --output-on-failure -j "$cjobs" --timeout 600 \
    --output-junit "$OUT/ctest-junit.xml" ${SK_CTEST_ARGS:-} "$@" >"$OUT/ctest.log" 2>&1
  local rc=$?
  tail -25 "$OUT/ctest.log"

  if [[ ${SK_GPU_SANITIZE:-0} == 1 ]]; then
    echo "run.sh: compute-sanitizer memcheck over tests/gpu"
    local san
    san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    "$san" --tool memcheck --error-exitcode 3 "$build/tests/sk_test_gpu" \
      --gtest_filter='CudaVsCpu.*:CudaBackend.*:CudaAllocator.SteadyState*' >"$OUT/sanitizer.log" 2>&1
    echo "run.sh: compute-sanitizer exit status $? ($(grep -c 'Invalid\|ERROR SUMMARY: [1-9]' "$OUT/sanitizer.log") error lines)"
  fi

  echo
  summary "$build" "$OUT/ctest-junit.xml" "$OUT/ctest.log" | tee "$OUT/summary.txt"
  echo "ctest exit status $rc" | tee -a "$OUT/summary.txt"
  return $rc
}

case ${1:-run} in
  prepare) prepare ;;
  run)
    shift $(($# > 0 ? 1 : 0))
    run_device "$@"
    ;;
  -h | --help | help) sed -n '2,40p' "$0" ;;
  *) die "usage: bash tests/gpu/run.sh [prepare | run [ctest args...]]" ;;
esac
