"""Showing the twin in another pose for a moment (to render a target) without disturbing its motion."""

from __future__ import annotations

from contextlib import contextmanager

import mujoco
import numpy as np

from facetwin.sim.twin import FaceTwin

STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS


def physics_state(twin: FaceTwin) -> np.ndarray:
    """The twin's full physics state (time, qpos, qvel, actuator state, warm start) as one vector."""
    state = np.empty(mujoco.mj_stateSize(twin.model, STATE))
    mujoco.mj_getState(twin.model, twin.data, state, STATE)
    return state


@contextmanager
def posed(twin: FaceTwin, state: np.ndarray):
    """Within the block the twin shows `state`; afterwards it is exactly where it was."""
    saved = physics_state(twin)
    mujoco.mj_setState(twin.model, twin.data, state, STATE)
    mujoco.mj_forward(twin.model, twin.data)
    try:
        yield twin
    finally:
        mujoco.mj_setState(twin.model, twin.data, saved, STATE)
        mujoco.mj_forward(twin.model, twin.data)


def render_state(twin: FaceTwin, state: np.ndarray, size: int) -> np.ndarray:
    with posed(twin, state):
        return twin.render(size)
