"""N copies of the face twin that settle at once: a batch of commands in, a batch of expressions out.

Each world behaves as its own FaceTwin: commands are checked by the spec as FaceTwin.set_command
checks them, start from the state the world is in (apply does not reset), and settle by FaceTwin's
rule, per world: chunks of SETTLE_CHUNK steps until every joint's |qvel| < SETTLE_TOL, at most
SETTLE_MAX_STEPS. A world that has settled does not change while the others finish, so world i of
`apply(commands)` equals `FaceTwin.apply(commands[i])` from the same state (tests/test_sim_batch.py).
`step(commands, n)` holds the commands for exactly n physics steps instead (FaceTwin.step: the
collector's and the envs' rule). `worlds=` on apply, step and reset moves only those worlds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from facetwin.blendshape_torch import TorchBlendshapes
from facetwin.expression import Expression
from facetwin.sim.batch.layout import ModelLayout
from facetwin.sim.batch.readout import BatchReadout
from facetwin.sim.twin import CAMERA, READOUT_SIZE, SETTLE_CHUNK, SETTLE_MAX_STEPS, SETTLE_TOL, FaceTwin, TwinState
from facetwin.spec import CommandError, FaceSpec

BACKENDS = ("rollout", "warp")
NETWORKS = ("torch", "litert")


@dataclass
class BatchState:
    """What one batch of commands gives, world by world; tensors on the twin's device."""

    command: torch.Tensor  # (N, 25) as applied
    servo_positions: torch.Tensor  # (N, 25) measured, normalised like the command
    settle_steps: torch.Tensor  # (N,) int64
    time: torch.Tensor  # (N,) simulated seconds of each world
    landmarks: torch.Tensor | None = None  # (N, 478, 3) pixels, like Expression.landmarks (float64 here)
    blendshapes: torch.Tensor | None = None  # (N, 52) float32
    head: torch.Tensor | None = None  # (N, 3) yaw, pitch, roll, degrees

    def __len__(self) -> int:
        return self.command.shape[0]

    def expressions(self) -> list[Expression]:
        """One Expression per world, as FaceTwin.expression() builds it."""
        if self.landmarks is None:
            raise RuntimeError("this batch was applied with readout=False")
        lm = self.landmarks.detach().cpu().numpy().astype(np.float32)
        bs = self.blendshapes.detach().cpu().numpy()
        head = self.head.detach().cpu().numpy().astype(np.float32)
        time = self.time.cpu().numpy()
        return [Expression(blendshapes=bs[i], head=head[i], landmarks=lm[i], timestamp=float(time[i]), image_size=READOUT_SIZE)
                for i in range(len(self))]

    def twin_states(self) -> list[TwinState]:
        """The batch as FaceTwin.apply's per-command results."""
        exprs = self.expressions() if self.landmarks is not None else [None] * len(self)
        cmd, pos, steps = (t.cpu().numpy() for t in (self.command, self.servo_positions, self.settle_steps))
        return [TwinState(cmd[i], pos[i], exprs[i], int(steps[i])) for i in range(len(self))]


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device: use 'cpu' or 'cuda[:k]'") from exc
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"device {device!r}: BatchTwin runs on 'cpu' or 'cuda[:k]'")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for, but torch.cuda.is_available() is False (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'no'}); pass device='cpu', or run on a machine with an NVIDIA "
            "driver and a CUDA build of torch"
        )
    index = dev.index or 0
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return torch.device("cuda", index)


class BatchTwin:
    """`n_worlds` face twins stepped together; physics by `backend`, readout in torch on `device`.

    backend "rollout": MuJoCo's native thread pool on CPU (float64, equal to FaceTwin to rounding).
    backend "warp": MuJoCo Warp (float32) on `device`; needs the `warp` extra. Default: warp on CUDA,
    rollout on CPU. `nthread` sizes the rollout pool (default: every core). `compile_network` runs the
    blendshape network through torch.compile: faster per world, but the first readout compiles it.
    `network` "torch" runs the blendshape network batched on `device`; "litert" (CPU only) runs it
    world by world through LiteRT as FaceTwin does: no faster, but coefficients bit-equal to FaceTwin's
    on equal landmarks, and unhurt by other processes on a busy CPU, where torch's threads stall.
    """

    def __init__(self, n_worlds: int, device: str | torch.device = "cpu", backend: str | None = None, *,
                 spec: FaceSpec | None = None, bundle: str | os.PathLike | None = None, blendshapes: bool = True,
                 nthread: int | None = None, compile_network: bool = False, network: str = "torch"):
        if isinstance(n_worlds, bool) or not isinstance(n_worlds, (int, np.integer)) or n_worlds < 1:
            raise ValueError(f"n_worlds must be a positive integer, got {n_worlds!r}")
        self.device = resolve_device(device)
        backend = backend or ("warp" if self.device.type == "cuda" else "rollout")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.n, self.backend = int(n_worlds), backend
        # One FaceTwin is the template: the same spec, model, skinning and camera as a single twin.
        self._template = FaceTwin(spec, bundle, blendshapes=False)
        self.spec, self.model = self._template.spec, self._template.model
        layout = ModelLayout.of(self.model, self._template.skinning, self.spec.names, CAMERA)
        self._servo_qpos = layout.servo_qpos
        if network not in NETWORKS:
            raise ValueError(f"unknown blendshape network {network!r}; choose from {', '.join(NETWORKS)}")
        if network == "litert" and self.device.type != "cpu":
            raise ValueError("network='litert' runs on the CPU; use network='torch' on a CUDA device")
        if not blendshapes:
            net = None
        elif network == "litert":
            from facetwin.blendshape_model import BlendshapeModel

            net = BlendshapeModel(self._template.bundle)
        else:
            net = TorchBlendshapes.from_bundle(self._template.bundle)
        self.readout = BatchReadout(self._template.skinning, float(self.model.cam_fovy[layout.cam_id]), READOUT_SIZE,
                                    self.device, net, compile_network)
        if backend == "rollout":
            from facetwin.sim.batch.rollout_backend import RolloutPhysics

            self.physics = RolloutPhysics(self.model, layout, self.n, self.device, nthread)
        else:
            from facetwin.sim.batch.warp_backend import WarpPhysics

            self.physics = WarpPhysics(self.model, layout, self.n, self.device)
        self.command = np.zeros((self.n, self.spec.n))
        # The last readout of every world, and which worlds moved since: a call that moves a few worlds
        # reads out only those (the network's cost is per world read).
        self._read: dict[str, torch.Tensor] = {}
        self._stale = np.ones(self.n, bool)

    # -- control ------------------------------------------------------------------------------
    def select(self, worlds) -> np.ndarray | None:
        """World indices as an int64 array (None: every world), each checked to be in range once."""
        if worlds is None:
            return None
        sel = np.asarray(worlds)
        if sel.dtype == bool:
            if sel.shape != (self.n,):
                raise ValueError(f"a world mask must have one entry per world ({self.n}), got shape {sel.shape}")
            return np.flatnonzero(sel)
        sel = sel.astype(np.int64).reshape(-1)
        if len(np.unique(sel)) != len(sel) or (len(sel) and (sel.min() < 0 or sel.max() >= self.n)):
            raise ValueError(f"worlds must be distinct indices in [0, {self.n}), got {sel.tolist()[:10]}")
        return sel

    def check_commands(self, commands, worlds: np.ndarray | None = None) -> np.ndarray:
        """(len(worlds), 25) float64, each row checked by the spec as FaceTwin.set_command checks one command."""
        arr = np.asarray(commands, dtype=np.float64)
        rows = self.n if worlds is None else len(worlds)
        if arr.ndim != 2 or arr.shape[0] != rows:
            raise CommandError(f"expected ({rows}, {self.spec.n}) commands, one row per world, got shape {arr.shape}")
        out = np.empty_like(arr)
        for i, row in enumerate(arr):
            try:
                out[i] = self.spec.check_command(row)
            except CommandError as exc:
                raise CommandError(f"world {i if worlds is None else int(worlds[i])}: {exc}") from None
        return out

    def reset(self, worlds=None, *, readout: bool = True) -> BatchState | None:
        """Worlds (indices or a mask; None: all) back to the neutral face at rest; the others stay as they are."""
        sel = self.select(worlds)
        self.physics.reset(sel)
        self.command[slice(None) if sel is None else sel] = 0.0
        self._moved(sel)
        return self.state(np.zeros(self.n, dtype=np.int64), readout=readout) if readout else None

    def _hold(self, commands, sel: np.ndarray | None) -> np.ndarray:
        c = self.check_commands(commands, sel)
        self.command[slice(None) if sel is None else sel] = c
        return np.radians(np.stack([self.spec.offsets_deg(row) for row in self.command]))

    def apply(self, commands, worlds=None, *, readout: bool = True) -> BatchState:
        """Move world i's servos to commands[i] and let every face settle from where it is.

        With `worlds` (indices or a mask), commands has one row per selected world and only those move;
        the state still covers every world (settle_steps 0 for those left out).
        """
        sel = self.select(worlds)
        ctrl = self._hold(commands, sel)
        steps = self.physics.settle(ctrl, SETTLE_TOL, SETTLE_CHUNK, SETTLE_MAX_STEPS, sel)
        self._moved(sel)
        return self.state(steps, readout=readout)

    def step(self, commands, nstep: int, worlds=None, *, readout: bool = True) -> BatchState:
        """Hold commands for exactly `nstep` physics steps, as FaceTwin.set_command + FaceTwin.step(nstep),
        in every world or only in `worlds` (then one command row per selected world)."""
        if isinstance(nstep, bool) or not isinstance(nstep, (int, np.integer)) or nstep < 1:
            raise ValueError(f"nstep must be a positive integer, got {nstep!r}")
        sel = self.select(worlds)
        ctrl = self._hold(commands, sel)
        self.physics.step(ctrl, int(nstep), sel)
        self._moved(sel)
        return self.state(np.zeros(self.n, dtype=np.int64), readout=readout)

    # -- readout ------------------------------------------------------------------------------
    def servo_positions(self) -> np.ndarray:
        return self.spec.commands_from_offsets(np.degrees(self.physics.qpos()[:, self._servo_qpos]))

    def _moved(self, sel: np.ndarray | None) -> None:
        self._stale[slice(None) if sel is None else sel] = True

    def _readout(self) -> dict[str, torch.Tensor]:
        """Landmarks, coefficients and head angles of every world, reading out only those that moved."""
        todo = np.flatnonzero(self._stale)
        if len(todo):
            frames = self.physics.frames(None if len(todo) == self.n else todo)
            landmarks = self.readout.landmarks_px(frames)
            fresh = {"landmarks": landmarks, "blendshapes": self.readout.blendshapes(landmarks),
                     "head": self.readout.head_angles(frames)}
            if len(todo) == self.n:
                self._read = fresh
            else:
                rows = torch.as_tensor(todo, device=self.device)
                for key, value in fresh.items():
                    self._read[key][rows] = value
            self._stale[:] = False
        return self._read

    def state(self, settle_steps, *, readout: bool = True) -> BatchState:
        t = lambda a: torch.as_tensor(np.asarray(a), device=self.device)  # noqa: E731
        out = BatchState(t(self.command.copy()), t(self.servo_positions()), t(np.asarray(settle_steps, np.int64)),
                         t(self.physics.time().copy()))  # a view of live state otherwise
        if readout:
            read = self._readout()
            # copies: the cache changes with the next call, a BatchState must not
            out.landmarks, out.blendshapes, out.head = (read[k].clone() for k in ("landmarks", "blendshapes", "head"))
        return out

    def close(self) -> None:
        self.physics.close()
        self._template.close()

    def __enter__(self) -> "BatchTwin":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
