"""The live mimicry loop: frames -> perception -> policy -> target (-> side-by-side video), measured.

Per frame: MediaPipe in video mode with One-Euro smoothing reads the person; with a face, the policy
maps the 55-dim expression to 25 commands; without one, ``FaceLossHold`` holds then eases to neutral;
the command goes to the target (the twin, or the servos through the safety layer). Only then, outside
the latency, the twin is read out (fast path) and rendered for the video.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path


from facetwin.app.live.face_loss import FaceLossConfig, FaceLossHold
from facetwin.app.live.frames import LatestFrames, SequentialFrames, TimedFrame
from facetwin.app.live.stats import FrameRecord, MimicStats, smile, summarise
from facetwin.perception import Frame, OneEuroConfig
from facetwin.perception.sources import FALLBACK_FPS


@dataclass
class MimicConfig:
    source: str  # video file, image(s), or webcam:N
    policy: str | None = None  # a `facetwin train` run directory, neutral, or None: the shipped default (agents.policies.loader)
    refine_steps: int = 0  # gradient steps through the run's forward model per answer (agents.refine)
    target: str = "sim"  # sim, virtual, or a serial port
    out: Path | None = None  # side-by-side .mp4
    view: str | Path | None = None  # rerun timeline: an .rrd file, or viewer.SPAWN for a window (extra `viewer`)
    stats: Path | None = None  # JSON
    realtime: bool = False  # drop frames rather than queue them
    smoothing: OneEuroConfig | None = field(default_factory=OneEuroConfig)
    max_frames: int | None = None
    face_loss: FaceLossConfig = field(default_factory=FaceLossConfig)
    landmarker: str | None = None
    calibration: Path | None = None  # for a serial-port target
    render_height: int = 360
    max_faces: int = 1  # one tracked face keeps MediaPipe's per-frame cost lowest
    readout: bool = True  # read the twin's expression each frame (smile trace, bars); costs ~4 ms
    face: str | None = None  # the robot face (`--face`; facetwin.spec.load_face), the default face when None


@dataclass
class MimicResult:
    stats: MimicStats
    out: Path | None
    stats_path: Path | None
    interrupted: bool


def _ms(seconds: float) -> float:
    return 1000.0 * seconds


class MimicLoop:
    """One frame at a time: perceive, decide, send (timed: the latency), then read out and draw (after)."""

    def __init__(self, perceiver, policy, target, hold: FaceLossHold, *, fps: float, still_images: bool,
                 writer=None, readout: bool = True, render_height: int = 360, timeline=None):
        self.perceiver, self.policy, self.target, self.hold = perceiver, policy, target, hold
        self.fps, self.still_images = fps, still_images
        self.writer, self.readout, self.render_height = writer, readout, render_height
        self.timeline = timeline  # viewer.TimelineLog
        self._previous_t: float | None = None
        self._written_up_to = -1  # source index of the last frame in the video

    def process(self, timed: TimedFrame) -> FrameRecord:
        frame = timed.frame
        # Still images carry no time; space them as video frames so hold/ease still advance.
        t = frame.index / self.fps if self.still_images else frame.timestamp
        t0 = time.perf_counter()
        expr = self.perceiver.perceive(frame.rgb, t)
        t1 = time.perf_counter()
        command = self.hold.saw_face(self.policy(expr.vector), t) if expr.face_found else self.hold.without_face(t)
        t2 = time.perf_counter()
        self.target.send(command, (t - self._previous_t) if self._previous_t is not None else 1.0 / self.fps)
        t3 = time.perf_counter()
        self._previous_t = t
        record = FrameRecord(
            index=frame.index, timestamp=t, face=expr.face_found, latency_ms=_ms(t3 - timed.arrived),
            perception_ms=_ms(t1 - t0), policy_ms=_ms(t2 - t1), command_ms=_ms(t3 - t2),
            person_smile=smile(expr.blendshapes) if expr.face_found else None,
            command=[round(float(c), 5) for c in command],
        )
        twin_bs = None
        if self.readout or self.writer is not None or self.timeline is not None:
            twin = self.target.readout()
            if twin is not None:
                twin_bs = twin.blendshapes
                record.twin_smile, record.readout_ms = smile(twin_bs), _ms(time.perf_counter() - t3)
        if self.writer is not None or self.timeline is not None:
            t4 = time.perf_counter()
            person_bs = expr.blendshapes if expr.face_found else None
            h = self.render_height
            twin_rgb = self.target.render((h, h))  # one render serves the video and the timeline
            if self.writer is not None:
                self._draw(frame, t, person_bs, twin_bs, twin_rgb)
            if self.timeline is not None:
                from facetwin.app.live.viewer import ViewFrame

                self.timeline.log(ViewFrame(frame.index, t, command, frame.rgb, twin_rgb, person_bs, twin_bs))
            record.render_ms = _ms(time.perf_counter() - t4)
        return record

    def _draw(self, frame: Frame, t: float, person_bs, twin_bs, twin_rgb) -> None:
        from facetwin.app.live.side_by_side import compose

        h = self.render_height
        caption = f"frame {frame.index}  t={t:.2f}s" + ("" if person_bs is not None else "  (no face)")
        picture = compose(frame.rgb, twin_rgb, person_bs, twin_bs, height=h, caption=caption)
        self.writer.write(picture, repeat=frame.index - self._written_up_to)
        self._written_up_to = frame.index


def run_mimic(config: MimicConfig, *, policy=None, target=None) -> MimicResult:
    """Run the loop to the end of the source (or ``max_frames``, or Ctrl-C) and write what was asked.

    ``policy`` / ``target``: already-open stages to use instead of opening ``config.policy`` /
    ``config.target`` (the caller then owns the target and closes it). ``policy`` may be any callable from a
    55-dim expression to the face's commands, e.g. a `FacePolicy` from ``agents.policies.loader.load_policy``.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    from facetwin.agents.policies.loader import load_policy
    from facetwin.app.live.side_by_side import SideBySideWriter
    from facetwin.app.live.targets import open_target
    from facetwin.perception import FacePerceiver, open_source
    from facetwin.spec import load_face

    if config.max_frames is not None and config.max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {config.max_frames}")
    if config.stats is not None and not Path(config.stats).parent.is_dir():
        raise FileNotFoundError(f"--stats {config.stats}: folder {Path(config.stats).parent} does not exist")
    spec = load_face(config.face)
    n_servos = spec.n
    # Cheapest checks first: a bad source or output path should fail before the twin is built.
    source = open_source(config.source)
    fps = float(getattr(source, "fps", FALLBACK_FPS))
    writer = SideBySideWriter(config.out, fps) if config.out is not None else None
    timeline = None
    owns_target = target is None
    records: list[FrameRecord] = []
    interrupted = False
    frames = None
    try:
        if config.view is not None:
            from facetwin.app.live.viewer import TimelineLog

            timeline = TimelineLog(config.view, spec.names, name=f"mimic {Path(str(config.source)).name}")
        policy = policy if policy is not None else load_policy(config.policy, spec, config.refine_steps)
        with FacePerceiver(config.landmarker, mode="video", max_faces=config.max_faces,
                           smoothing=config.smoothing) as perceiver:
            if target is None:
                target = open_target(config.target, calibration=config.calibration,
                                     mirror=writer is not None or timeline is not None, bundle=config.landmarker,
                                     spec=spec)
            loop = MimicLoop(perceiver, policy, target, FaceLossHold(n_servos, config.face_loss), fps=fps,
                             still_images=source.kind == "image", writer=writer, readout=config.readout,
                             render_height=config.render_height, timeline=timeline)
            frames = LatestFrames(source) if config.realtime else SequentialFrames(source)
            start = time.perf_counter()
            try:
                for timed in frames:
                    records.append(loop.process(timed))
                    if config.max_frames is not None and len(records) >= config.max_frames:
                        break
            except KeyboardInterrupt:
                interrupted = True
            wall = time.perf_counter() - start
            frames.close()
            stats = summarise(records, wall_s=wall, frames_read=frames.read, dropped=frames.dropped,
                              commands_sent=getattr(target, "sent", len(records)), source=config.source,
                              policy=_policy_name(policy, config.policy), target=config.target,
                              realtime=config.realtime)
    finally:
        if frames is not None:
            frames.close()
        source.close()
        if writer is not None:
            writer.close()
        if timeline is not None:
            timeline.close()
        if owns_target and target is not None:
            target.close()
    stats_path = stats.write(config.stats) if config.stats is not None else None
    return MimicResult(stats, config.out if writer is not None and writer.frames else None, stats_path, interrupted)


def _policy_name(policy, configured: str | None) -> str:
    """The name stats record: a loaded policy's own (``default`` for the shipped one), else what was configured."""
    name = getattr(policy, "name", None)
    return str(name if name is not None else configured if configured is not None else "custom")
