"""What a mimic run measured: per-frame records and the summary written by ``--stats``.

Latency runs from the moment a frame was available (read from a file, or captured) to the moment its
command was sent; rendering and the twin's readout come after and are excluded. Smiles are the mean
of mouthSmileLeft/Right: the person's from perception, the twin's from its fast-path readout.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from facetwin.expression import blendshape_index

STAGES = ("perception", "policy", "command", "render", "readout")
_SMILE = (blendshape_index("mouthSmileLeft"), blendshape_index("mouthSmileRight"))


def smile(blendshapes: np.ndarray | None) -> float | None:
    return None if blendshapes is None else float(np.mean([blendshapes[i] for i in _SMILE]))


@dataclass
class FrameRecord:
    index: int  # the frame's index in the source
    timestamp: float  # source seconds
    face: bool
    latency_ms: float
    perception_ms: float
    policy_ms: float  # 0 when no face (the held command is reused)
    command_ms: float
    render_ms: float | None = None
    readout_ms: float | None = None
    person_smile: float | None = None
    twin_smile: float | None = None
    command: list[float] | None = None  # what was sent (25, spec order)

    def stage_ms(self, stage: str) -> float | None:
        return getattr(self, f"{stage}_ms")


@dataclass
class StageTiming:
    mean_ms: float
    p50_ms: float
    p95_ms: float


@dataclass
class MimicStats:
    source: str
    policy: str
    target: str
    realtime: bool
    frames: int  # processed
    frames_read: int
    dropped_frames: int
    frames_without_face: int
    wall_s: float
    fps: float
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_max: float | None
    stages: dict[str, StageTiming | None]  # every name in STAGES; None for a stage that did not run
    smile_correlation: float | None  # person vs twin over frames with both; None without variation
    commands_sent: int
    per_frame: list[FrameRecord] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def stage_timing(records: list[FrameRecord], stage: str) -> StageTiming | None:
    values = [v for r in records if (v := r.stage_ms(stage)) is not None]
    if not values:
        return None
    return StageTiming(float(np.mean(values)), float(np.percentile(values, 50)), float(np.percentile(values, 95)))


def correlation(a: list[float | None], b: list[float | None]) -> float | None:
    pairs = np.array([(x, y) for x, y in zip(a, b) if x is not None and y is not None], dtype=np.float64)
    if len(pairs) < 3 or pairs[:, 0].std() < 1e-9 or pairs[:, 1].std() < 1e-9:
        return None
    return float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])


def summarise(records: list[FrameRecord], *, wall_s: float, frames_read: int, dropped: int, commands_sent: int,
              source: str, policy: str, target: str, realtime: bool) -> MimicStats:
    latencies = [r.latency_ms for r in records]
    return MimicStats(
        source=source, policy=policy, target=target, realtime=realtime,
        frames=len(records), frames_read=frames_read, dropped_frames=dropped,
        frames_without_face=sum(not r.face for r in records),
        wall_s=wall_s, fps=len(records) / wall_s if wall_s > 0 else 0.0,
        latency_ms_p50=_percentile(latencies, 50), latency_ms_p95=_percentile(latencies, 95),
        latency_ms_max=max(latencies) if latencies else None,
        stages={s: stage_timing(records, s) for s in STAGES},
        smile_correlation=correlation([r.person_smile for r in records], [r.twin_smile for r in records]),
        commands_sent=commands_sent,
        per_frame=records,
    )
