#!/usr/bin/env bash
# Train the policy that ships with facetwin (assets/policies/default/): the one place its recipe is written.
# Collects expert episodes in the twin labelled through the camera path (each frame rendered and read by the
# full Face Landmarker, `--readout pixels`), fits the study's winner on them (docs/study.md: an MLP at the
# shipped size, supervised, then the expression pass through a direct forward model fitted to the same pixel
# labels, no aggregation rounds), and copies the weights and config into the package. `facetwin mimic`, `eval`
# and `real mimic` use it when --policy is not given. The MLP, not kan-attn, because on camera labels it read
# better by more than the seeds' spread (docs/study.md); `facetwin train`'s default kind stays the paper's
# kan-attn. Rerun this script whenever assets/face_spec.yaml changes: a policy only loads for the spec it was
# trained for.
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
"$FACETWIN" collect --backend sim --readout pixels --episodes 300 --frames-per-episode 100 --seed "$SEED" \
  --workers 2 --out "$WORK/data" --resume --no-progress
"$FACETWIN" train --data "$WORK/data" --model mlp --hparam 'hidden=[448,448]' --out "$WORK/run" --seed "$SEED" \
  --device cpu --objective expression --forward-model direct --aggregate-rounds 0 --epochs 60 --expression-epochs 20 \
  --no-progress
seconds=$(( $(date +%s) - start ))

# The package keeps only what the policy needs to answer: the forward model (for --refine) stays in the run.
mkdir -p "$DEST"
cp "$WORK/run/model.safetensors" "$WORK/run/config.json" "$DEST/"
chmod 644 "$DEST"/*  # run files are written private (atomic temporaries); package data is for everyone
echo "default policy: $DEST ($(du -k "$DEST/model.safetensors" | cut -f1) kB weights), trained in ${seconds} s"
