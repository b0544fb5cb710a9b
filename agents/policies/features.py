"""What a policy sees: the 55-dim expression vector, validated and brought to unit scale.

Blendshape coefficients are already in [0, 1]; head angles are degrees, so they are divided by
`HEAD_SCALE_DEG` (a typical head turn) to put them on the same footing. Every model kind applies
the same scaling, inside its own forward pass, so checkpoints and ONNX files take raw expressions.
"""

from __future__ import annotations

import numpy as np

from facetwin.expression import EXPRESSION_DIM, N_BLENDSHAPES

HEAD_SCALE_DEG = 30.0


def input_scale() -> np.ndarray:
    """(55,) multipliers: 1 for the 52 coefficients, 1/HEAD_SCALE_DEG for yaw, pitch, roll."""
    scale = np.ones(EXPRESSION_DIM, np.float32)
    scale[N_BLENDSHAPES:] = 1.0 / HEAD_SCALE_DEG
    return scale


def as_expression_batch(expr) -> np.ndarray:
    """(55,) or (N, 55) -> (N, 55) float32, or a clear error for anything else."""
    arr = np.asarray(expr, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != EXPRESSION_DIM:
        raise ValueError(
            f"a policy takes expressions of {EXPRESSION_DIM} values (52 blendshapes + yaw, pitch, roll in degrees), "
            f"shaped (55,) or (N, 55); got shape {np.shape(expr)}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("expression contains NaN/inf; drop frames where no face was found before calling the policy")
    return arr
