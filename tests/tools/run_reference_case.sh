#!/usr/bin/env bash
# Runs one reference case and checks it with the independent checker:
#   run_reference_case.sh CASE_DIR MODE OUT_FILE COMMAND [ARGS...]
# executes  COMMAND ARGS... CASE_DIR --dump OUT_FILE --mode MODE
# then      python3 compare.py CASE_DIR/expected[_train].safetensors OUT_FILE
# The checker needs numpy: the first of $PYTHON, python3, /usr/bin/python3 that imports it is used.
# $SK_REFERENCE_CHECKER names another checker beside this script (e.g. compare_bf16.py for runs
# with `--precision bf16` among ARGS).
set -euo pipefail
case_dir=$1 mode=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
expected=$case_dir/expected.safetensors
[ "$mode" = train ] && expected=$case_dir/expected_train.safetensors
py=
for cand in "${PYTHON:-}" python3 /usr/bin/python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c "import numpy" >/dev/null 2>&1; then py=$cand; break; fi
done
if [ -z "$py" ]; then
  echo "run_reference_case.sh: no python3 with numpy found (install python3-numpy)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
rm -f "$out"
"$@" "$case_dir" --dump "$out" --mode "$mode"
"$py" "$here/${SK_REFERENCE_CHECKER:-compare.py}" "$expected" "$out"
