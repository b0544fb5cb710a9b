"""Is a face spec sound? The checks `facetwin spec check --face NAME` runs, in the order a new face fails them.

1. spec: the file loads and validates (ranges inside the servo travel, cable travel in the ratio of the
   range, couplings naming real servos, primitive targets naming real servos);
2. motion: the primitive library resolves on the face and the expert strategy's episodes keep its couplings;
3. twin: the MuJoCo model compiles with one actuator per servo, in the spec's order;
4. servos: every servo, at both ends of its range, reaches its goal and moves the skin;
5. poses: every named pose the face has the mechanism for, rendered and read by MediaPipe's full
   landmarker, shows one face, and the pixel-path checks hold at the first face's thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facetwin.spec import FaceSpec

SERVO_GOAL_DEG = 3.0  # a position loop holds its load within this of the goal
SKIN_MOVES_MM = 0.5  # a servo at either end of its range moves some landmark at least this far
RISE_SLACK = 0.02  # of the pixel checks' thresholds, as tests/test_sim_render.py allows a software renderer


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


@dataclass
class SpecCheckReport:
    face: str
    spec_name: str
    n_servos: int
    findings: list[Finding] = field(default_factory=list)
    faces_detected: dict[str, int] = field(default_factory=dict)
    pixel_rises: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def add(self, check: str, ok: bool, detail: str) -> bool:
        self.findings.append(Finding(check, bool(ok), detail))
        return bool(ok)

    def lines(self) -> list[str]:
        return [f"{'ok  ' if f.ok else 'FAIL'}  {f.check:10s} {f.detail}" for f in self.findings]


def face_poses(spec: FaceSpec) -> dict[str, np.ndarray]:
    """The named poses the face has the mechanism for (every primitive they play), as commands."""
    from facetwin.motion.poses import NAMED_POSES, named_pose
    from facetwin.motion.primitives import available

    plays = {p.name for p in available(spec)}
    return {name: named_pose(name, spec) for name, acts in NAMED_POSES.items() if all(a.primitive in plays for a in acts)}


def check_face(spec: FaceSpec, bundle=None, *, pixels: bool = True) -> SpecCheckReport:
    """Run the checks on `spec` (already loaded: loading is where a malformed file fails, with its reason)."""
    report = SpecCheckReport(spec.face, spec.name, spec.n)
    regions = ", ".join(f"{r} {len(spec.region_indices(r))}" for r in dict.fromkeys(s.region for s in spec.servos))
    report.add("spec", True, f"{spec.name}: {spec.n} servos ({regions}), bus IDs "
                             f"{min(s.bus_id for s in spec.servos)}-{max(s.bus_id for s in spec.servos)}")
    if not _motion(spec, report):
        return report
    twin = _twin(spec, bundle, report)
    if twin is None:
        return report
    with twin:
        _servos(twin, report)
        if pixels:
            _poses(twin, bundle, report)
    return report


def _motion(spec: FaceSpec, report: SpecCheckReport) -> bool:
    from facetwin.motion.expert import ExpertStrategy
    from facetwin.motion.primitives import PRIMITIVES, available, check_library

    try:
        check_library(spec)
        strategy = ExpertStrategy(spec, seed=0)
        episode = strategy.episode(0, 150, 30.0)
    except (KeyError, ValueError) as exc:
        return report.add("motion", False, str(exc.args[0] if exc.args else exc))
    plays = [p.name for p in available(spec)]
    missing = [name for name in PRIMITIVES if name not in plays]
    broken = sum(bool(spec.coupling_violations(c)) for c in episode)
    return report.add("motion", broken == 0,
                      f"plays {len(plays)} of {len(PRIMITIVES)} primitives" + (f" (not {', '.join(missing)})" if missing else "")
                      + f"; expert episode frames breaking a coupling: {broken} of {len(episode)}")


def _twin(spec: FaceSpec, bundle, report: SpecCheckReport):
    from facetwin.sim.twin import FaceTwin

    try:
        twin = FaceTwin(spec, bundle)
    except Exception as exc:  # noqa: BLE001 - any failure to build the model is this check's finding
        report.add("twin", False, f"the model does not build: {type(exc).__name__}: {exc}")
        return None
    report.add("twin", True, f"compiles: {twin.model.nu} actuators in the spec's order, {twin.model.nbody} bodies, "
                             f"{len(twin.geometry.nodes)} skin points, {len(twin.geometry.cables)} cables")
    return twin


def _servos(twin, report: SpecCheckReport) -> None:
    spec = twin.spec
    rest = twin.reset().expression.landmarks
    off_goal, still = [], []
    for i, servo in enumerate(spec.servos):
        for end in (-1.0, 1.0):
            command = np.zeros(spec.n)
            command[i] = end
            twin.reset(readout=False)
            state = twin.apply(command)
            error = abs(spec.offsets_deg(np.clip(state.servo_positions, -1, 1))[i] - spec.offsets_deg(command)[i])
            if error > SERVO_GOAL_DEG:
                off_goal.append(f"{servo.name}{end:+.0f} ({error:.1f} deg)")
            moved_px = np.linalg.norm(state.expression.landmarks[:, :2] - rest[:, :2], axis=1).max()
            if servo.region != "neck" and moved_px * _mm_per_px(twin) < SKIN_MOVES_MM:
                still.append(f"{servo.name}{end:+.0f}")
    twin.reset(readout=False)
    report.add("servos", not off_goal and not still,
               f"{spec.n} servos at both ends of their range"
               + (f"; off their goal: {', '.join(off_goal)}" if off_goal else "; all reach their goals")
               + (f"; move no skin: {', '.join(still)}" if still else "; all move the skin"))


def _mm_per_px(twin) -> float:
    """Millimetres per readout pixel at the face, from the face's width in metres and in pixels at rest."""
    world = twin.landmarks_world()
    px = twin.landmarks_px()
    return 1e3 * float(np.ptp(world[:, 0]) / max(np.ptp(px[:, 0]), 1e-9))


def _poses(twin, bundle, report: SpecCheckReport) -> None:
    from facetwin.app.bench.twin import POSE_CHECKS
    from facetwin.expression import EXPRESSION_NAMES
    from facetwin.motion.poses import NAMED_POSES
    from facetwin.perception import FacePerceiver

    poses = face_poses(twin.spec)
    pixel = {}
    with FacePerceiver(bundle, mode="image") as perceiver:
        for name, command in poses.items():
            twin.reset(readout=False)
            twin.apply(command, readout=False)
            seen = perceiver.perceive(twin.render(512))
            report.faces_detected[name] = int(seen.extra.get("faces_detected", int(seen.face_found)))
            pixel[name] = seen.vector
    twin.reset(readout=False)
    lacking = [name for name in NAMED_POSES if name not in poses]
    not_one = {n: k for n, k in report.faces_detected.items() if k != 1}
    report.add("faces", not not_one,
               f"{len(poses)} named poses rendered, one face detected in "
               + ("each" if not not_one else f"all but {', '.join(f'{n} ({k})' for n, k in not_one.items())}")
               + (f"; no mechanism for {', '.join(lacking)}" if lacking else ""))
    missed = []
    for pose, key, least in POSE_CHECKS:
        if pose not in pixel or "neutral" not in pixel:
            continue
        i = EXPRESSION_NAMES.index(key)
        rise = float(pixel[pose][i] - pixel["neutral"][i])
        report.pixel_rises[f"{pose}.{key}"] = {"pixel_rise": rise, "least": least}
        if rise < least - RISE_SLACK * max(1.0, least):
            missed.append(f"{pose}.{key} {rise:+.2f} (least {least:g})")
    report.add("pixels", not missed, f"{len(report.pixel_rises) - len(missed)} of {len(report.pixel_rises)} pixel-path "
                                     "checks met" + (f"; missed: {', '.join(missed)}" if missed else ""))
