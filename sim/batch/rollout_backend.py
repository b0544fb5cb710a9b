"""Physics for a batch of faces on CPU threads: MuJoCo's native `mujoco.rollout`.

Each world is a full-physics state vector; a settle round rolls the worlds that are still moving one
SETTLE_CHUNK forward on the rollout thread pool and drops those that came to rest, so a world that
has settled never changes again and every world ends exactly where FaceTwin.settle would stop it.

Rollout starts every call with a zero constraint warm start (it does not hand the warm start back),
where FaceTwin's MjData carries it from step to step. The solver converges either way; the two
differ only at the solver's tolerance, far below the readout's resolution (docs/batch.md).
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import torch
from mujoco import rollout

from facetwin.sim.batch.layout import ModelLayout
from facetwin.sim.batch.readout import Frames

_FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS


def _slice(model: mujoco.MjModel, *before: mujoco.mjtState, part: mujoco.mjtState) -> slice:
    # State components are concatenated in the order of their bits, so offsets are sizes of prefixes.
    start = mujoco.mj_stateSize(model, sum(int(b) for b in before))
    return slice(start, start + mujoco.mj_stateSize(model, int(part)))


class RolloutPhysics:
    def __init__(self, model: mujoco.MjModel, layout: ModelLayout, n_worlds: int, device: torch.device,
                 nthread: int | None = None):
        S = mujoco.mjtState
        self.model, self.layout, self.n, self.device = model, layout, n_worlds, device
        self.nthread = nthread or os.cpu_count() or 1
        self._pool = rollout.Rollout(nthread=self.nthread)
        self._thread_data = [mujoco.MjData(model) for _ in range(max(self.nthread, 1))]
        self._scratch = mujoco.MjData(model)  # kinematics for the readout
        self._time = _slice(model, part=S.mjSTATE_TIME)
        self._qpos = _slice(model, S.mjSTATE_TIME, part=S.mjSTATE_QPOS)
        self._qvel = _slice(model, S.mjSTATE_TIME, S.mjSTATE_QPOS, part=S.mjSTATE_QVEL)
        self.state = np.zeros((n_worlds, mujoco.mj_stateSize(model, _FULL)))
        # FaceTwin reads body poses that mj_step computed *before* its last integration: keep, per world,
        # the qpos those poses belong to.
        self.pose_qpos = np.zeros((n_worlds, model.nq))
        self.reset()

    def reset(self, worlds: np.ndarray | None = None) -> None:
        """The selected worlds (indices; None: all) back to the neutral face at rest."""
        model = self.model
        d = mujoco.MjData(model)
        mujoco.mj_resetData(model, d)
        mujoco.mj_forward(model, d)
        rest = np.empty(self.state.shape[1])
        mujoco.mj_getState(model, d, rest, _FULL)
        sel = slice(None) if worlds is None else worlds
        self.state[sel] = rest
        self.pose_qpos[sel] = d.qpos

    def settle(self, ctrl: np.ndarray, tol: float, chunk: int, max_steps: int, worlds: np.ndarray | None = None) -> np.ndarray:
        """Step each selected world (None: all) in chunks until max|qvel| < tol or max_steps; returns the
        steps taken per world (0 for worlds not selected, which do not move)."""
        steps = np.zeros(self.n, dtype=np.int64)
        moving = np.arange(self.n) if worlds is None else np.asarray(worlds, dtype=np.int64)
        warm = np.zeros((self.n, self.model.nv))
        taken = 0  # by every world still moving: they all started together
        while len(moving) and taken < max_steps:
            out, _ = self._pool.rollout(self.model, self._thread_data, self.state[moving], ctrl[moving, None, :],
                                        nstep=chunk, initial_warmstart=warm[: len(moving)])
            self.pose_qpos[moving] = out[:, -2, self._qpos] if chunk > 1 else self.state[moving, self._qpos]
            self.state[moving] = out[:, -1]
            taken += chunk
            steps[moving] = taken
            still = np.abs(out[:, -1, self._qvel]).max(axis=1) >= tol
            moving = moving[still]
        return steps

    def step(self, ctrl: np.ndarray, nstep: int, worlds: np.ndarray | None = None) -> None:
        """Hold ctrl for exactly `nstep` steps in the selected worlds (None: all), as FaceTwin.step does."""
        sel = np.arange(self.n) if worlds is None else np.asarray(worlds, dtype=np.int64)
        if not len(sel):
            return
        out, _ = self._pool.rollout(self.model, self._thread_data, self.state[sel], ctrl[sel, None, :], nstep=nstep,
                                    initial_warmstart=np.zeros((len(sel), self.model.nv)))
        self.pose_qpos[sel] = out[:, -2, self._qpos] if nstep > 1 else self.state[sel, self._qpos]
        self.state[sel] = out[:, -1]

    def frames(self, worlds: np.ndarray | None = None) -> Frames:
        """The readout's poses of the selected worlds (None: all), in that order."""
        lay, d, m = self.layout, self._scratch, self.model
        worlds = np.arange(self.n) if worlds is None else worlds
        n, nb = len(worlds), len(lay.bone_ids)
        bone_pos, bone_rot = np.empty((n, nb, 3)), np.empty((n, nb, 9))
        iris, head, cam_pos, cam_rot = np.empty((n, len(lay.iris_sites), 3)), np.empty((n, 9)), np.empty((n, 3)), np.empty((n, 9))
        for i, world in enumerate(worlds):
            d.qpos[:] = self.pose_qpos[world]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)  # camlight's tracking modes read the subtree centres
            mujoco.mj_camlight(m, d)
            bone_pos[i], bone_rot[i] = d.xpos[lay.bone_ids], d.xmat[lay.bone_ids]
            iris[i], head[i] = d.site_xpos[lay.iris_sites], d.xmat[lay.head_id]
            cam_pos[i], cam_rot[i] = d.cam_xpos[lay.cam_id], d.cam_xmat[lay.cam_id]
        t = lambda a, *shape: torch.from_numpy(a).reshape(n, *shape).to(self.device)  # noqa: E731
        return Frames(t(bone_pos, nb, 3), t(bone_rot, nb, 3, 3), t(iris, -1, 3), t(head, 3, 3), t(cam_pos, 3), t(cam_rot, 3, 3))

    def qpos(self) -> np.ndarray:
        return self.state[:, self._qpos]

    def time(self) -> np.ndarray:
        return self.state[:, self._time.start]

    def close(self) -> None:
        self._pool.close()
