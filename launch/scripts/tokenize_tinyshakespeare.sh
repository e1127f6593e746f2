#!/usr/bin/env bash
# Tokenizes the shipped Shakespeare for launch/configs/tinyshakespeare_bpe.toml: trains a
# SentencePiece BPE model of 1024 pieces on the text, then writes llm.c token shards of 200,000
# tokens (three shards, so the config reads a glob of several).
#   OUT/tok.model, OUT/shards/shard-000000.bin, shard-000001.bin, ...
# Usage: bash launch/scripts/tokenize_tinyshakespeare.sh [OUT] [SINKHORN]
#   OUT defaults to runs/tinyshakespeare_bpe (where the config looks), SINKHORN to build/sinkhorn.
# An existing OUT/shards is replaced.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/runs/tinyshakespeare_bpe}
bin=${2:-$root/build/sinkhorn}
text=$root/launch/configs/data/tinyshakespeare.txt
mkdir -p "$out"
"$bin" tokenize train --input "$text" --vocab-size 1024 --model-type bpe --out "$out/tok.model"
rm -rf "$out/shards"
"$bin" tokenize encode --model "$out/tok.model" --out "$out/shards/shard-" --shard-tokens 200000 "$text"
