"""Collecting a dataset on the robot: the expert strategy through FaceRobot, the face seen by a camera.

Rows mean what they mean in the sim collector (facetwin.sim.collector): row k = (command k, servo
positions and face 1/fps s after command k was sent). The loop is pipelined on wall-clock time:
command k+1 goes out at t0 + (k+1)/fps, and the sync read that follows it is the position state of
row k; the camera frame taken right then is row k's face, read through the full landmarker (pixels,
not the twin's fast path). The first command of an episode is held until the face is at rest.

Cameras: `webcam:N` (OpenCV), or `twin`: a MuJoCo twin perturbed like a built robot
(`facetwin.sim.perturb`) that mirrors the measured servo positions, rendered and noised. Its
landmarks are scaled into the twin's 512-px readout frame, so sim and "real" datasets compare.

Frames where the landmarker finds no face are dropped (a policy cannot learn from them); the
extra column `capture_frame_index` keeps each kept row's frame number, so gaps stay visible and
timing is recoverable. An episode with no face at all stops the run (the camera is not on the face).
The dataset commits one episode at a time; `resume` continues after the last whole episode.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.dataset import DatasetError, DatasetWriter, EpisodeFrames, Feature
from facetwin.dataset.collection import check_resume, read_collection_config, write_collection_record
from facetwin.expression import EXPRESSION_DIM, N_LANDMARKS

COLLECTION_PATH = "meta/real_collection.json"
CAPTURE_FRAME = "capture_frame_index"
TWIN_CAMERA = "twin"
TWIN_READOUT_PX = 512  # the sim's fast-path readout frame (facetwin.sim.twin.READOUT_SIZE)


@dataclass(frozen=True)
class RealCollectConfig:
    """What determines how the rows were made (a resume must match it)."""

    strategy: str = "expert"
    seed: int = 0  # strategy seed: the commands of episode i depend only on (strategy, seed, i)
    frames_per_episode: int = 60
    fps: int = 10  # a render + landmarker frame takes ~40-70 ms on a CPU; 10 fps leaves room for it
    camera: str = TWIN_CAMERA
    perturb_seed: int | None = 0  # twin camera: which perturbed robot (None: the nominal twin)
    render_size: int = 384  # twin camera: square render size (px)

    def __post_init__(self):
        if self.frames_per_episode < 2 or self.fps < 1:
            raise ValueError("frames_per_episode must be >= 2 and fps >= 1")
        if self.camera == TWIN_CAMERA and not 64 <= self.render_size <= 1024:
            raise ValueError(f"render_size must be 64..1024 px, got {self.render_size}")

    def describe(self) -> str:
        cam = (f"a perturbed twin (perturbation seed {self.perturb_seed}) mirroring the measured servo positions, "
               f"rendered at {self.render_size}px" if self.camera == TWIN_CAMERA else f"camera {self.camera}")
        return (f"Collected on the servo bus through FaceRobot (safety layer on) with the {self.strategy} strategy "
                f"(seed {self.seed}), {self.frames_per_episode} frames per episode at {self.fps} fps; the face seen by "
                f"{cam} and read by the MediaPipe face landmarker. Frames without a face are dropped "
                f"({CAPTURE_FRAME} keeps the frame numbers).")


@dataclass
class RealCollectResult:
    root: Path
    episodes_total: int
    episodes_added: int
    frames_added: int
    frames_dropped: int  # no face found
    frames_late: int  # processing overran the frame period (the servos kept moving meanwhile)
    wall_s: float
    perturbation: dict | None = None
    timings_ms: dict = field(default_factory=dict)  # mean ms per frame: camera, perception


class TwinCamera:
    """A perturbed twin as the camera's subject: mirrors measured servo positions, renders, adds noise."""

    def __init__(self, perturb_seed: int | None, render_size: int, bundle=None, spec=None):
        os.environ.setdefault("MUJOCO_GL", "egl")
        from facetwin.sim.perturb import NOMINAL, Perturbation, apply_perturbation

        from facetwin.sim.twin import FaceTwin

        self.twin = FaceTwin(spec, bundle=bundle, blendshapes=False)
        self.perturbation = NOMINAL if perturb_seed is None else Perturbation.for_twin(self.twin, perturb_seed)
        apply_perturbation(self.twin, self.perturbation)
        self.size = render_size
        self.landmark_scale = TWIN_READOUT_PX / render_size
        self._rng = np.random.default_rng(None if perturb_seed is None else perturb_seed + 7919)

    def start_episode(self) -> None:
        self.twin.reset()
        self.twin.settle()

    def capture(self, measured: np.ndarray, dt: float) -> np.ndarray:
        from facetwin.sim.perturb import noisy_image

        self.twin.set_command(np.clip(measured, -1.0, 1.0))
        self.twin.step(max(1, int(round(dt / self.twin.timestep))))
        return noisy_image(self.twin.render(self.size), self.perturbation.camera_noise_px, self._rng)

    def close(self) -> None:
        self.twin.close()


class WebcamCamera:
    """An OpenCV camera watching the physical face; landmarks stay in its own pixels."""

    landmark_scale = 1.0
    perturbation = None

    def __init__(self, spec: str):
        from facetwin.perception import open_source

        self.source = open_source(spec)
        self._frames = iter(self.source)

    def start_episode(self) -> None:
        pass

    def capture(self, measured: np.ndarray, dt: float) -> np.ndarray:
        try:
            return next(self._frames).rgb
        except StopIteration:
            raise RuntimeError(f"{self.source.spec} stopped delivering frames") from None

    def close(self) -> None:
        self.source.close()


def open_camera(config: RealCollectConfig, bundle=None, spec=None):
    """The camera watching the face; `spec`: the face a twin camera shows (the default face when None)."""
    if config.camera == TWIN_CAMERA:
        return TwinCamera(config.perturb_seed, config.render_size, bundle, spec)
    return WebcamCamera(config.camera)


def read_real_config(root: Path) -> RealCollectConfig | None:
    return read_collection_config(root, COLLECTION_PATH, RealCollectConfig)


def _write_config(root: Path, config: RealCollectConfig, perturbation, motion: dict) -> None:
    write_collection_record(root, COLLECTION_PATH, "facetwin.app.live.real_collect", config,
                            perturbation=perturbation.to_json() if perturbation is not None else None, motion=motion)


class _Episode:
    """Rows of one episode as they come in (only frames with a face)."""

    def __init__(self):
        self.action, self.state, self.expression, self.landmarks, self.frame = [], [], [], [], []

    def add(self, k: int, action, state, expr, scale: float) -> None:
        self.action.append(action)
        self.state.append(state)
        self.expression.append(expr.vector)
        self.landmarks.append(expr.landmarks * scale)
        self.frame.append(k)

    def frames(self) -> EpisodeFrames:
        return EpisodeFrames(
            action=np.asarray(self.action, np.float32), state=np.asarray(self.state, np.float32),
            expression=np.asarray(self.expression, np.float32).reshape(-1, EXPRESSION_DIM),
            landmarks=np.asarray(self.landmarks, np.float32).reshape(-1, N_LANDMARKS, 3),
            extra={CAPTURE_FRAME: np.asarray(self.frame, np.int64).reshape(-1, 1)},
        )


def collect_real(robot, camera, root: str | Path, episodes: int, config: RealCollectConfig = RealCollectConfig(), *,
                 resume: bool = False, bundle=None, progress: bool = True) -> RealCollectResult:
    """Run `episodes` expert episodes on a connected FaceRobot and write them to `root` (with `resume`, up to that total)."""
    from facetwin.motion import make_strategy
    from facetwin.motion.strategy import strategy_settings
    from facetwin.perception import FacePerceiver

    root = Path(root)
    strategy = make_strategy(config.strategy, robot.spec, config.seed)
    motion = strategy_settings(strategy)
    if resume:
        check_resume(root, COLLECTION_PATH, config, motion)
    elif read_real_config(root) is not None:
        raise DatasetError(f"{root} already holds a real collection: continue it with --resume or pick a new directory")
    period = 1.0 / config.fps
    begin = time.monotonic()
    added = dropped = late = 0
    cam_s = perc_s = 0.0
    frames_seen = 0
    clock = 0.0  # perception timestamps: strictly increasing across episodes, in capture time
    with FacePerceiver(bundle, mode="video") as perceiver, \
            DatasetWriter(root, robot.spec, config.fps, resume=resume, chunk_frames=config.frames_per_episode,
                          extra_features={CAPTURE_FRAME: Feature("int64", (1,))}, description=config.describe()) as writer:
        _write_config(root, config, camera.perturbation, motion)
        first = writer.next_episode_index
        for episode in range(first, episodes):
            commands = strategy.episode(episode, config.frames_per_episode, config.fps)
            robot.move_to(commands[0])  # from rest, as the sim collector starts each episode
            camera.start_episode()
            rows = _Episode()
            t0 = time.monotonic()
            robot.send(commands[0])
            for k in range(len(commands)):
                due = t0 + (k + 1) * period
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                else:
                    late += 1
                # the read after sending command k+1 is where command k got the servos in one period
                measured = robot.send(commands[k + 1]) if k + 1 < len(commands) else robot.read_positions()
                t = time.perf_counter()
                rgb = camera.capture(measured, period)
                cam_s += time.perf_counter() - t
                clock += period
                t = time.perf_counter()
                expr = perceiver.perceive(rgb, clock)
                perc_s += time.perf_counter() - t
                frames_seen += 1
                if expr.face_found:
                    rows.add(k, commands[k], measured, expr, camera.landmark_scale)
                else:
                    dropped += 1
            clock += 1.0  # a gap between episodes: the tracker should not blend them
            if not rows.frame:
                raise RuntimeError(f"no face found in any frame of episode {episode}: point the camera at the face "
                                   "(and light it), then resume")
            writer.add_episode(rows.frames())
            added += 1
            if progress:
                print(f"episode {episode}: {len(rows.frame)}/{len(commands)} frames with a face", flush=True)
        total = writer.next_episode_index
    return RealCollectResult(
        root=root, episodes_total=total, episodes_added=added,
        frames_added=frames_seen - dropped, frames_dropped=dropped, frames_late=late, wall_s=time.monotonic() - begin,
        perturbation=camera.perturbation.to_json() if camera.perturbation is not None else None,
        timings_ms={"camera": 1e3 * cam_s / max(frames_seen, 1), "perception": 1e3 * perc_s / max(frames_seen, 1)},
    )
