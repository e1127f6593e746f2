#!/usr/bin/env bash
# Runs one reference case with bf16 Linear GEMMs and checks it at bf16 tolerances:
#   run_reference_case_bf16.sh CASE_DIR MODE OUT_FILE COMMAND [ARGS...]
# executes  COMMAND ARGS... CASE_DIR --dump OUT_FILE --mode MODE --precision bf16
# then      python3 compare_bf16.py CASE_DIR/expected[_train].safetensors OUT_FILE
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
  echo "run_reference_case_bf16.sh: no python3 with numpy found (install python3-numpy)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
rm -f "$out"
"$@" "$case_dir" --dump "$out" --mode "$mode" --precision bf16
"$py" "$here/compare_bf16.py" "$expected" "$out"
