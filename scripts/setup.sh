#!/usr/bin/env bash
# Set up facetwin on a fresh Debian/Ubuntu machine: Mesa's EGL for headless rendering, a virtualenv in
# .venv, and the project with its test extra. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # EGL + Mesa's DRI drivers (llvmpipe) render MuJoCo headlessly on a CPU; ffmpeg-free mp4 comes from OpenCV.
  if ! dpkg -s libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libglib2.0-0 >/dev/null
  fi
  # headless Chromium loads the HTML report of `facetwin eval --report` in its test
  if ! dpkg -s chromium >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch: the CPU build is enough here and CUDA is used when present; the constraints keep the resolver
# from pulling a multi-GB CUDA wheel where a CPU wheel is already available.
# ray: tests/test_collect_ray.py runs a local two-worker cluster; warp: the batched twin's MuJoCo Warp backend is
# held equal to FaceTwin on Warp's CPU device.
.venv/bin/pip install -q -c scripts/constraints.txt -e ".[test,rl,viewer,ray,warp]"
echo "facetwin is set up: .venv/bin/facetwin --help"
