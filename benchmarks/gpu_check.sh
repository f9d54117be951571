#!/usr/bin/env bash
# One prepared check for a machine with a CUDA GPU (issue "Fast CPU inference ...", req. 5).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR=reports/gpu_check
#
# Runs, in order, and stops at the first failure:
#   1. the full-size scene benchmark on CUDA (benchmarks.run_all --device cuda --only scene
#      --full-scene: a 10980 x 10980 scene, torch engine with bf16 autocast);
#   2. a --full smoke of both training phases with bf16 (tdpcr train, phase 1 then phase 2
#      initialised from it, full-size model, precision=bf16, a few steps each);
#   3. the DDP path with NCCL on one device (torchrun --nproc_per_node=1, backend nccl).
# It records the card and every figure in OUT_DIR/gpu_check.md and replaces the block between
# "<!-- gpu-check:begin -->" and "<!-- gpu-check:end -->" in docs/performance.md (or, where
# that file does not exist, docs/engines.md) with it. Needs: `make setup` with a CUDA torch.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-reports/gpu_check}
PY=${PYTHON:-.venv/bin/python}
TDPCR=${TDPCR:-.venv/bin/tdpcr}
TORCHRUN=${TORCHRUN:-.venv/bin/torchrun}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
: > "$LOG"
step() { echo "== $*" | tee -a "$LOG"; }

step "card"
CARD=$("$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; p = torch.cuda.get_device_properties(0); print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")')
echo "$CARD" | tee -a "$LOG"

step "1. full-size scene benchmark (CUDA)"
START=$(date +%s)
"$PY" -m benchmarks.run_all --device cuda --only scene --full-scene --out "$OUT/bench" 2>&1 | tee -a "$LOG"
SCENE_S=$(( $(date +%s) - START ))

step "2. --full smoke of both phases, bf16"
TWIN="$OUT/twin"
[ -d "$TWIN" ] || "$TDPCR" data synth "$TWIN" --n-tiles 40 --size 256 --seed 0 2>&1 | tee -a "$LOG"
START=$(date +%s)
"$TDPCR" train --phase phase1 --preset full --data-root "$TWIN" --out "$OUT/phase1" --device cuda \
  --max-steps 20 --set precision=bf16 --no-resume --no-progress 2>&1 | tail -n 5 | tee -a "$LOG"
"$TDPCR" train --phase phase2 --preset full --data-root "$TWIN" --out "$OUT/phase2" --device cuda \
  --init-from "$OUT/phase1/last" --max-steps 20 --set precision=bf16 --no-resume --no-progress \
  2>&1 | tail -n 5 | tee -a "$LOG"
TRAIN_S=$(( $(date +%s) - START ))

step "3. DDP with NCCL on one device"
START=$(date +%s)
"$TORCHRUN" --standalone --nproc_per_node=1 -m tdpcr_lib.cli.train --phase phase1 --small-model \
  --data-root "$TWIN" --out "$OUT/ddp" --device cuda --max-steps 10 --no-resume --no-progress \
  2>&1 | tail -n 5 | tee -a "$LOG"
grep -q '"steps"' "$LOG"
DDP_S=$(( $(date +%s) - START ))

SCENE_LINE=$(grep -iE "Mpx/s|scene" "$OUT/bench/"*.md 2>/dev/null | head -n 5 || true)
{
  echo "<!-- gpu-check:begin -->"
  echo "GPU check of $(date -u +%Y-%m-%d) on **$CARD** (benchmarks/gpu_check.sh):"
  echo
  echo "| check | result | wall time |"
  echo "|---|---|---|"
  echo "| full-size scene benchmark (CUDA, bf16) | see below | ${SCENE_S} s |"
  echo "| --full smoke, phase 1 + phase 2, bf16 (20 steps each) | passed | ${TRAIN_S} s |"
  echo "| DDP, NCCL, one device | passed | ${DDP_S} s |"
  echo
  echo '```'
  echo "$SCENE_LINE"
  echo '```'
  echo "<!-- gpu-check:end -->"
} > "$OUT/gpu_check.md"

DOC=docs/performance.md
[ -f "$DOC" ] || DOC=docs/engines.md
"$PY" - "$DOC" "$OUT/gpu_check.md" <<'PYEOF'
import re, sys
from pathlib import Path
doc, block = Path(sys.argv[1]), Path(sys.argv[2]).read_text().strip()
text = doc.read_text()
pattern = re.compile(r"<!-- gpu-check:begin -->.*?<!-- gpu-check:end -->", re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
doc.write_text(text)
print(f"recorded in {doc}")
PYEOF
