"""Physics for a batch of faces on MuJoCo Warp: every world steps in lockstep on a CUDA device, or on
Warp's CPU device (slow: it serves tests on machines without a GPU).

Worlds cannot leave a lockstep batch, so the settle rule is kept by snapshots: when a world first
comes to rest, its state and the body poses its readout needs are copied aside, the batch steps on
until every world has rested (or the step limit), and then each world is put back to its snapshot.
A world that has settled therefore ends exactly where FaceTwin.settle would stop it.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from facetwin.sim.batch.layout import ModelLayout
from facetwin.sim.batch.readout import Frames

EXTRA = "warp"  # the pyproject extra that brings mujoco-warp and warp-lang

# The integration state a world carries from one command to the next (the warm start included, as
# FaceTwin's MjData carries it).
_STATE_FIELDS = ("qpos", "qvel", "act", "qacc_warmstart", "time")
_FRAME_FIELDS = ("xpos", "xmat", "site_xpos", "cam_xpos", "cam_xmat")


def import_warp():
    try:
        import mujoco_warp as mjw
        import warp as wp
    except ImportError as exc:
        raise ImportError(
            f"backend='warp' needs MuJoCo Warp, which is not installed ({exc}); "
            f"install the extra: pip install 'facetwin[{EXTRA}]' (mujoco-warp and warp-lang)"
        ) from exc
    wp.config.quiet = True
    return wp, mjw


class WarpPhysics:
    def __init__(self, model: mujoco.MjModel, layout: ModelLayout, n_worlds: int, device: torch.device):
        self.wp, self.mjw = wp, mjw = import_warp()
        self.model, self.layout, self.n, self.device = model, layout, n_worlds, device
        self.wp_device = "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}"
        rest = mujoco.MjData(model)
        mujoco.mj_forward(model, rest)
        with wp.ScopedDevice(self.wp_device):
            self.m = mjw.put_model(model)
            self.d = mjw.put_data(model, rest, nworld=n_worlds)
        # torch views of Warp's arrays (no copies): the settle loop masks and snapshots through them
        fields = _STATE_FIELDS + _FRAME_FIELDS + ("ctrl",)
        self._live = {f: wp.to_torch(getattr(self.d, f)) for f in fields if f != "act" or model.na}
        self._saved: dict[str, torch.Tensor] = {}
        self.reset()

    def _snapshot(self, worlds: torch.Tensor | None = None) -> None:
        for f, live in self._live.items():
            if f == "ctrl":
                continue
            if worlds is None:
                self._saved[f] = live.clone()
            else:
                self._saved[f][worlds] = live[worlds]

    def _mask(self, worlds: np.ndarray | None) -> torch.Tensor:
        mask = torch.zeros(self.n, dtype=torch.bool, device=self._live["qvel"].device)
        mask[torch.as_tensor(np.arange(self.n) if worlds is None else np.asarray(worlds, np.int64), device=mask.device)] = True
        return mask

    def reset(self, worlds: np.ndarray | None = None) -> None:
        """The selected worlds (None: all) back to the neutral face at rest; the others stay as they are."""
        self._torch_done()
        with self.wp.ScopedDevice(self.wp_device):
            self.mjw.reset_data(self.m, self.d)
            self.mjw.forward(self.m, self.d)
        self.wp.synchronize_device(self.wp_device)
        if worlds is None:
            self._snapshot()
            return
        # Warp resets every world at once: put the others back from their snapshots.
        keep = ~self._mask(worlds)
        self._snapshot(~keep)
        for f, live in self._live.items():
            if f != "ctrl":
                live[keep] = self._saved[f][keep]
        self._torch_done()

    def step(self, ctrl: np.ndarray, nstep: int, worlds: np.ndarray | None = None) -> None:
        """Hold ctrl for exactly `nstep` steps in the selected worlds (None: all); the others do not move."""
        live, sel = self._live, self._mask(worlds)
        live["ctrl"].copy_(torch.as_tensor(ctrl, dtype=live["ctrl"].dtype))
        self._torch_done()
        with self.wp.ScopedDevice(self.wp_device):
            for _ in range(nstep):
                self.mjw.step(self.m, self.d)
        self.wp.synchronize_device(self.wp_device)
        self._snapshot(sel)
        for f in _STATE_FIELDS:  # worlds left out go back to where they were
            if f in live:
                live[f].copy_(self._saved[f])
        self._torch_done()

    def settle(self, ctrl: np.ndarray, tol: float, chunk: int, max_steps: int, worlds: np.ndarray | None = None) -> np.ndarray:
        live = self._live
        live["ctrl"].copy_(torch.as_tensor(ctrl, dtype=live["ctrl"].dtype))
        moving = self._mask(worlds)  # worlds left out count as rested: their snapshots put them back
        steps = torch.zeros(self.n, dtype=torch.int64, device=moving.device)
        taken = 0
        with self.wp.ScopedDevice(self.wp_device):
            while taken < max_steps:
                self._torch_done()
                for _ in range(chunk):
                    self.mjw.step(self.m, self.d)
                self.wp.synchronize_device(self.wp_device)
                taken += chunk
                ended = moving & (live["qvel"].abs().amax(dim=1) < tol) if taken < max_steps else moving
                self._snapshot(ended)
                steps[ended] = taken
                moving &= ~ended
                if not bool(moving.any()):
                    break
        for f in _STATE_FIELDS:  # worlds that rested early go back to where they rested
            if f in live:
                live[f].copy_(self._saved[f])
        self._torch_done()
        return steps.cpu().numpy()

    def _torch_done(self) -> None:
        # torch and Warp queue work on different CUDA streams: Warp must not step over arrays that
        # torch is still writing (the command, snapshots, restored states).
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def frames(self, worlds: np.ndarray | None = None) -> Frames:
        """The readout's poses of the selected worlds (None: all), in that order."""
        s, lay = self._saved, self.layout
        if worlds is not None:
            pick = torch.as_tensor(np.asarray(worlds, np.int64), device=s["xpos"].device)
            s = {f: s[f][pick] for f in _FRAME_FIELDS}
        to = lambda t: t.to(self.device, torch.float64)  # noqa: E731
        bones, cam = torch.as_tensor(lay.bone_ids, device=s["xpos"].device), lay.cam_id
        return Frames(
            bone_pos=to(s["xpos"][:, bones]),
            bone_rot=to(s["xmat"][:, bones]),
            iris=to(s["site_xpos"][:, torch.as_tensor(lay.iris_sites, device=bones.device)]),
            head_rot=to(s["xmat"][:, lay.head_id]),
            cam_pos=to(s["cam_xpos"][:, cam]),
            cam_rot=to(s["cam_xmat"][:, cam]),
        )

    def qpos(self) -> np.ndarray:
        return self._saved["qpos"].cpu().numpy().astype(np.float64)

    def time(self) -> np.ndarray:
        return self._saved["time"].cpu().numpy().astype(np.float64)

    def close(self) -> None:
        pass
