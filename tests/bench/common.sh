# common.sh — sourced by the benchmark scripts in tests/bench/ (never run on its own):
#   bench_usage SCRIPT         prints SCRIPT's leading comment block (its --help)
#   bench_binary BUILD NAME    the executable BUILD/NAME, or exit 2 naming it
#   bench_header [WHAT]        "# date, CPU, cores, load" and "# commit, WHAT" lines for the results
#   bench_median / bench_range numbers on the command line -> median / "min-max"
#   BENCH_PY                   the Python that reads metrics (Debian's /usr/bin/python3 when present)
#   BENCH_ROOT                 the repository
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_PY=/usr/bin/python3
[ -x "$BENCH_PY" ] || BENCH_PY=python3

bench_usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"; }

bench_binary() {
  local bin=$1/$2
  [ -x "$bin" ] || { echo "$(basename "$0"): $bin not found (build first: cmake --build $1)" >&2; exit 2; }
  echo "$bin"
}

bench_header() {
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), $(uptime | sed 's/.*load/load/')"
  echo "# commit $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)${1:+, $1}"
}

bench_median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bench_range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
