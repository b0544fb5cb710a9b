#!/usr/bin/env bash
# Train the policy that ships with facetwin (assets/policies/default/): the one place its recipe is written.
# Collects expert episodes in the twin, trains kan-attn on them with fixed seeds and sizes, and copies the
# weights and config into the package. `facetwin mimic`, `eval` and `real mimic` use it when --policy is not
# given. The objective is supervised (commands from the twin's own expressions) and the sizes are small, so
# the run stays within minutes on a busy 2-core CPU and the weights under 2 MB: the expression objective's
# forward models and aggregation round took 88 minutes there (docs/results.md, "The shipped policy"). The full
# recipe (`facetwin demo`) trains that way for the figures in docs/results.md. Rerun this script whenever
# assets/face_spec.yaml changes: a policy only loads for the spec it was trained for.
#
#   bash scripts/train_default_policy.sh [WORK_DIR]     (default WORK_DIR: runs/default_policy)
#
# Needs the landmarker bundle ($FACETWIN_FACE_LANDMARKER or the cache), like `facetwin collect`.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-runs/default_policy}
DEST=assets/policies/default
FACETWIN=${FACETWIN:-.venv/bin/facetwin}
export MUJOCO_GL=${MUJOCO_GL:-egl}
SEED=0

start=$(date +%s)
"$FACETWIN" collect --backend sim --episodes 80 --frames-per-episode 300 --seed "$SEED" --workers 2 \
  --out "$WORK/data" --resume --no-progress
"$FACETWIN" train --data "$WORK/data" --model kan-attn --out "$WORK/run" --seed "$SEED" --device cpu \
  --objective supervised --epochs 10 --no-progress
seconds=$(( $(date +%s) - start ))

# The package keeps only what the policy needs to answer: the forward models (for --refine) stay in the run.
mkdir -p "$DEST"
cp "$WORK/run/model.safetensors" "$WORK/run/config.json" "$DEST/"
chmod 644 "$DEST"/*  # run files are written private (atomic temporaries); package data is for everyone
echo "default policy: $DEST ($(du -k "$DEST/model.safetensors" | cut -f1) kB weights), trained in ${seconds} s"
