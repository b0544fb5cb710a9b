#!/usr/bin/env bash
# Train the policy that ships with facetwin (assets/policies/default/): the one place its recipe is written, and
# it is `facetwin collect && facetwin train` with their defaults (tests/test_default_policy.py holds that).
# collect labels each frame through the camera path (a 512 px render read by the full Face Landmarker); train
# fits an MLP supervised, tunes it through a direct forward model fitted to the same pixel labels, then runs
# two aggregation rounds that read the twin through pixels where the policy goes (and a little past it, region
# by region) and tune it again (docs/study.md). `facetwin mimic`, `eval` and `real mimic` use it when --policy
# is not given. Rerun this script whenever assets/face_spec.yaml changes: a policy only loads for the spec it was trained for.
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
EPISODES=600

start=$(date +%s)
"$FACETWIN" collect --episodes "$EPISODES" --frames-per-episode 100 --seed "$SEED" --workers 2 --out "$WORK/data" \
  --resume --no-progress
"$FACETWIN" train --data "$WORK/data" --out "$WORK/run" --seed "$SEED" --device cpu --no-progress
seconds=$(( $(date +%s) - start ))

# The package keeps only what the policy needs to answer: the forward model (for --refine) stays in the run.
mkdir -p "$DEST"
cp "$WORK/run/model.safetensors" "$WORK/run/config.json" "$DEST/"
chmod 644 "$DEST"/*  # run files are written private (atomic temporaries); package data is for everyone
echo "default policy: $DEST ($(du -k "$DEST/model.safetensors" | cut -f1) kB weights), trained in ${seconds} s"
