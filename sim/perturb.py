"""A twin that differs from the nominal one the way a built robot differs from its CAD.

`apply_perturbation(twin, p)` edits the twin's compiled MjModel in place, always relative to the
nominal values it held when first perturbed, so applying one perturbation after another (as system
identification does, thousands of times) never compounds:

- skin stiffness: `jnt_stiffness` of every skin-node slide joint (silicone batches differ);
- cable stiffness: `tendon_stiffness` of every servo cable (jaw ties stay nominal);
- guide offsets: `site_pos` of each cable's guide; its tendon keeps the CAD rest length, so a guide
  glued off by a millimetre pre-tensions or slackens that cable, as on the bench;
- servo offsets: a horn mounted a few degrees off. A position actuator pushes with
  kp * ctrl + biasprm[0] - kp * qpos, so biasprm[0] = kp * offset makes the servo settle `offset` away
  from whatever it is commanded, without touching the command path;
- camera noise (`camera_noise_px`) is not mechanics: `noisy_image` adds it to the camera's pixels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import mujoco
import numpy as np

_NOMINAL_ATTR = "_nominal_mechanics"  # stored on the twin at its first perturbation


@dataclass(frozen=True)
class Perturbation:
    """How a built face departs from its twin. Empty offset tuples mean none."""

    skin_stiffness_scale: float = 1.0
    cable_stiffness_scale: float = 1.0
    guide_offset_mm: tuple[tuple[float, float, float], ...] = ()  # per cable, in twin.geometry.cables order
    servo_offset_deg: tuple[float, ...] = ()  # per servo, face-spec order
    camera_noise_px: float = 0.0  # std of Gaussian sensor noise per pixel, in 8-bit intensity levels
    seed: int | None = None  # the seed a random perturbation was drawn from (also seeds the camera noise)

    def __post_init__(self):
        if self.skin_stiffness_scale <= 0 or self.cable_stiffness_scale <= 0:
            raise ValueError("stiffness scales must be positive (1.0 = nominal)")
        if self.camera_noise_px < 0:
            raise ValueError(f"camera_noise_px must be >= 0, got {self.camera_noise_px}")
        object.__setattr__(self, "guide_offset_mm", tuple(tuple(float(v) for v in g) for g in self.guide_offset_mm))
        object.__setattr__(self, "servo_offset_deg", tuple(float(v) for v in self.servo_offset_deg))
        if any(len(g) != 3 for g in self.guide_offset_mm):
            raise ValueError("guide_offset_mm holds one (x, y, z) offset per cable")

    @classmethod
    def random(cls, seed: int, n_servos: int, n_cables: int, *, skin: float = 0.35, cable: float = 0.35,
               guide_mm: float = 1.0, servo_deg: float = 3.0, camera_noise_px: float = 4.0) -> Perturbation:
        """A seeded robot-like perturbation: stiffness scales exp(U(-skin, skin)), Gaussian offsets."""
        rng = np.random.default_rng(seed)
        return cls(
            skin_stiffness_scale=float(np.exp(rng.uniform(-skin, skin))),
            cable_stiffness_scale=float(np.exp(rng.uniform(-cable, cable))),
            guide_offset_mm=tuple(map(tuple, rng.normal(0.0, guide_mm, (n_cables, 3)))) if guide_mm > 0 else (),
            servo_offset_deg=tuple(rng.normal(0.0, servo_deg, n_servos)) if servo_deg > 0 else (),
            camera_noise_px=camera_noise_px,
            seed=seed,
        )

    @classmethod
    def for_twin(cls, twin, seed: int, **kwargs) -> Perturbation:
        return cls.random(seed, twin.spec.n, len(twin.geometry.cables), **kwargs)

    def describe(self) -> str:
        parts = [f"skin stiffness x{self.skin_stiffness_scale:.3f}", f"cable stiffness x{self.cable_stiffness_scale:.3f}"]
        if self.servo_offset_deg:
            parts.append(f"servo offsets |mean| {np.abs(self.servo_offset_deg).mean():.2f} deg")
        if self.guide_offset_mm:
            parts.append(f"guide offsets |mean| {np.linalg.norm(self.guide_offset_mm, axis=1).mean():.2f} mm")
        if self.camera_noise_px:
            parts.append(f"camera noise {self.camera_noise_px:g} levels")
        return ", ".join(parts)

    # -- files ----------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> Perturbation:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown perturbation field(s) {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**raw)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Perturbation:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read twin parameters from {path}: {exc}") from exc
        return cls.from_json(raw.get("parameters", raw))


NOMINAL = Perturbation()


@dataclass
class _Nominal:
    skin_joints: np.ndarray  # joint ids of the skin-node slides
    skin_stiffness: np.ndarray
    cable_tendons: np.ndarray  # tendon ids, twin.geometry.cables order
    cable_stiffness: np.ndarray
    guide_sites: np.ndarray  # site ids, same order
    guide_pos: np.ndarray
    actuator_kp: np.ndarray
    actuator_bias0: np.ndarray


def _nominal(twin) -> _Nominal:
    saved = getattr(twin, _NOMINAL_ATTR, None)
    if saved is not None:
        return saved
    m = twin.model
    skin = np.flatnonzero(m.jnt_type == mujoco.mjtJoint.mjJNT_SLIDE)
    cables = twin.geometry.cables
    tendons = np.array([m.tendon(c.name).id for c in cables], dtype=int)
    guides = np.array([m.site(f"{c.name}_guide").id for c in cables], dtype=int)
    saved = _Nominal(
        skin_joints=skin, skin_stiffness=m.jnt_stiffness[skin].copy(),
        cable_tendons=tendons, cable_stiffness=m.tendon_stiffness[tendons].copy(),
        guide_sites=guides, guide_pos=m.site_pos[guides].copy(),
        actuator_kp=m.actuator_gainprm[:, 0].copy(), actuator_bias0=m.actuator_biasprm[:, 0].copy(),
    )
    setattr(twin, _NOMINAL_ATTR, saved)
    return saved


def apply_perturbation(twin, p: Perturbation):
    """Make `twin` the robot `p` describes (relative to its nominal model); returns the twin.

    `apply_perturbation(twin, NOMINAL)` restores the CAD values. Call `twin.reset()` (or settle) after,
    since the face at rest moves with the new springs.
    """
    nom = _nominal(twin)
    m = twin.model
    n_cables = len(nom.cable_tendons)
    if p.servo_offset_deg and len(p.servo_offset_deg) != twin.spec.n:
        raise ValueError(f"servo_offset_deg has {len(p.servo_offset_deg)} values; this face has {twin.spec.n} servos")
    if p.guide_offset_mm and len(p.guide_offset_mm) != n_cables:
        raise ValueError(f"guide_offset_mm has {len(p.guide_offset_mm)} offsets; this face has {n_cables} cables")
    m.jnt_stiffness[nom.skin_joints] = nom.skin_stiffness * p.skin_stiffness_scale
    m.tendon_stiffness[nom.cable_tendons] = nom.cable_stiffness * p.cable_stiffness_scale
    guide = nom.guide_pos.copy()
    if p.guide_offset_mm:
        guide += np.asarray(p.guide_offset_mm) * 1e-3
    m.site_pos[nom.guide_sites] = guide
    offsets = np.radians(np.asarray(p.servo_offset_deg)) if p.servo_offset_deg else np.zeros(twin.spec.n)
    m.actuator_biasprm[:, 0] = nom.actuator_bias0 + nom.actuator_kp * offsets
    twin.perturbation = p
    return twin


def noisy_image(rgb: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """`rgb` with Gaussian sensor noise of std `noise` intensity levels (uint8 in, uint8 out)."""
    if noise <= 0:
        return rgb
    out = rgb.astype(np.float32) + rng.normal(0.0, noise, rgb.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
