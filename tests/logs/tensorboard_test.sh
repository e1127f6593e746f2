#!/usr/bin/env bash
# TensorBoard read-back: our event files (trainer/tensorboard.cpp) read by TensorBoard's own Python
# reader, every value checked (tests/tools/check_tensorboard.py). The `tensorboard` package comes
# from PyPI into a test-only venv under the build folder (Debian's python3 + python3-numpy below
# it, --system-site-packages); created once, reused after.
# Usage: tensorboard_test.sh BUILD_DIR SOURCE_DIR WRITER_EXE SINKHORN_EXE
set -euo pipefail
build=$1 src=$2 writer=$3 sinkhorn=$4
venv=$build/test-venv
py=$venv/bin/python
if ! "$py" -c 'import tensorboard, numpy' >/dev/null 2>&1; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "tensorboard==2.21.0"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 1. scalars and a fixed text.
ev=$("$writer" "$tmp/a")
"$py" "$src/tests/tools/check_tensorboard.py" "$ev"
# 2. a text that went through SentencePiece in the same process (both protobuf copies loaded).
head -c 20000 "$src/launch/configs/data/tinyshakespeare.txt" > "$tmp/text.txt"
"$sinkhorn" tokenize train --input "$tmp/text.txt" --vocab-size 400 --out "$tmp/tok.model" > /dev/null
ev=$("$writer" "$tmp/b" "$tmp/tok.model" "$tmp/text.txt")
"$py" "$src/tests/tools/check_tensorboard.py" "$ev" "$tmp/text.txt"
# 3. protobuf is sealed inside the writer (trainer/tensorboard/seal_protobuf.cmake): no
#    google::protobuf symbol is exported by, or resolved into, the executable from outside.
if nm -D "$writer" | grep -q '6google8protobuf'; then
  echo "google::protobuf symbols cross the seal:"; nm -D "$writer" | grep '6google8protobuf' | head; exit 1
fi
# 4. the event-file name TensorBoard globs for.
case $(basename "$ev") in events.out.tfevents.*.*) ;; *) echo "bad event file name $ev"; exit 1 ;; esac
echo "tensorboard_test: ok"
