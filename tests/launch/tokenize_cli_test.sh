#!/usr/bin/env bash
# `sinkhorn tokenize` end to end on the shipped Shakespeare, through the recipe of
# launch/configs/tinyshakespeare_bpe.toml (launch/scripts/tokenize_tinyshakespeare.sh):
#   train a 1024-piece model, encode into 200,000-token llm.c shards, check the shards with numpy
#   (an independent reader of llm.c's header layout), decode them back to the identical text, and
#   check the config's [data] reads them (its tokenizer opens against model.num_tokens);
#   bad input: one line "sinkhorn: error: ..." naming the file, exit 2 (unusable input), nothing written.
# Usage: tokenize_cli_test.sh SINKHORN SOURCE_DIR
set -u
bin=$(realpath "$1") src=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
fail() { echo "FAIL: $*"; exit 1; }
strip_notice() { sed -i '/^sinkhorn: built with CUDA but no GPU found/d' "$1"; }
py=""
for cand in "${PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$cand" ] && "$cand" -c 'import numpy' >/dev/null 2>&1; then py=$cand; break; fi
done
[ -n "$py" ] || fail "no python3 with numpy (install python3-numpy)"
text=$src/launch/configs/data/tinyshakespeare.txt

# 1. The recipe.
bash "$src/launch/scripts/tokenize_tinyshakespeare.sh" "$work/bpe" "$bin" > recipe.txt 2> recipe.err \
  || { cat recipe.txt recipe.err; fail "recipe failed"; }
grep -q '^tokenize train: bpe model of 1024 pieces' recipe.txt || { cat recipe.txt; fail "train summary"; }
summary=$(grep '^tokenize encode: ' recipe.txt) || { cat recipe.txt; fail "no encode summary line"; }
tokens=$(echo "$summary" | sed -E 's/.* -> ([0-9]+) tokens.*/\1/')
ls bpe/shards/shard-*.bin > shards.txt
n=$(wc -l < shards.txt)
[ "$n" = $(( (tokens + 199999) / 200000 )) ] || fail "$n shards for $tokens tokens"
echo "$summary" | grep -q "in $n uint16 shard(s)" || fail "summary: $summary"

# 2. numpy reads every shard: llm.c header (magic 20240520, version 1, count), ids < 1024, sizes.
"$py" - "$tokens" bpe/shards/shard-*.bin <<'PY' || fail "numpy check of the shards"
import sys, numpy as np
total, files = int(sys.argv[1]), sys.argv[2:]
seen = 0
for i, f in enumerate(files):
    raw = open(f, 'rb').read()
    h = np.frombuffer(raw[:1024], dtype='<i4')
    assert h[0] == 20240520 and h[1] == 1, (f, h[:3])
    t = np.frombuffer(raw[1024:], dtype='<u2')
    assert len(t) == h[2], (f, len(t), h[2])
    assert i == len(files) - 1 or len(t) == 200000, (f, len(t))
    assert t.max() < 1024, (f, t.max())
    seen += len(t)
assert seen == total, (seen, total)
print("numpy: %d shards, %d tokens" % (len(files), seen))
PY

# 3. Decoding the shards (read through the corpus reader) gives the text back, byte for byte.
"$bin" tokenize decode --model bpe/tok.model --out back.txt "bpe/shards/shard-*.bin" 2> err.txt || { cat err.txt; fail "decode"; }
cmp -s back.txt "$text" || fail "decoded text differs from the input"
"$bin" tokenize decode --model bpe/tok.model bpe/shards/shard-000000.bin > first.txt 2> err.txt || fail "decode to stdout"
[ "$(head -c 200 first.txt)" = "$(head -c 200 "$text")" ] || fail "first shard decodes to another text"

# 4. The example config's [data] opens the shards and the tokenizer (sample needs no weights to
#    get there: its tokenizer check comes before loading them).
cfg=$src/launch/configs/tinyshakespeare_bpe.toml
sets=(--set data.path="$work/bpe/shards/shard-*.bin" --set data.tokenizer="$work/bpe/tok.model")
"$bin" sample "$cfg" "${sets[@]}" --set model.num_tokens=1000 --weights nowhere > out.txt 2> err.txt
strip_notice err.txt
grep -qF "[data]: tokenizer = \"$work/bpe/tok.model\": its vocabulary has 1024 pieces, more than model.num_tokens = 1000" err.txt \
  || { cat err.txt; fail "tokenizer vocabulary vs num_tokens"; }

# 5. Bad input.
check_err() {  # expected-substring command...
  local want=$1; shift
  "$bin" "$@" > out.txt 2> err.txt; local rc=$?
  [ $rc = 2 ] || { cat err.txt; fail "'$*': exit $rc"; }
  strip_notice err.txt
  [ "$(wc -l < err.txt)" = 1 ] || { cat err.txt; fail "'$*': not one line"; }
  grep -q '^sinkhorn: error: ' err.txt || { cat err.txt; fail "'$*': no 'sinkhorn: error: '"; }
  grep -qF -- "$want" err.txt || { cat err.txt; fail "'$*': expected '$want'"; }
}
before=$(ls bpe/shards | wc -l)
check_err "bpe/shards/shard-000000.bin' already exists" tokenize encode --model bpe/tok.model --out bpe/shards/shard- "$text"
[ "$(ls bpe/shards | wc -l)" = "$before" ] || fail "encode wrote next to existing shards"
check_err "input 'missing.txt': no such file" tokenize encode --model bpe/tok.model --out new/s- missing.txt
[ ! -e new ] || fail "encode created its folder before failing"
check_err "tokenizer 'nope.model': no such file" tokenize encode --model nope.model --out new/s- "$text"
head -c 5000 bpe/shards/shard-000000.bin > cut.bin
check_err "token shard 'cut.bin': llm.c header says 200000 uint16 tokens" tokenize decode --model bpe/tok.model cut.bin
check_err "truncated at byte offset 5000" tokenize decode --model bpe/tok.model cut.bin
"$bin" tokenize train --input "$text" --vocab-size 300 --out small.model > /dev/null 2>&1 && fail "vocab 300 < 256 + chars accepted"
head -c 20000 "$text" > small.txt
"$bin" tokenize train --input small.txt --vocab-size 400 --out small.model > /dev/null 2>&1 || fail "small model"
check_err "not below the vocabulary size (the tokenizer's vocabulary = 400)" tokenize decode --model small.model bpe/shards/shard-000000.bin
check_err "--vocab-size 100: must be >= 260" tokenize train --input "$text" --vocab-size 100 --out x.model
check_err "unknown subcommand 'tokenise'" tokenize tokenise
check_err "no input text file" tokenize encode --model bpe/tok.model --out y/s-
check_err "pattern matches no file" tokenize decode --model bpe/tok.model "nothing-*.bin"
echo "tokenize_cli_test: ok"
