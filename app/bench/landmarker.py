"""`facetwin bench landmarker`: the torch Face Landmarker against MediaPipe's own, on agreement and speed.

agreement: MediaPipe IMAGE mode and ``TorchFaceLandmarker`` read the same frames: the shared human
photos and 512 px renders of the twin (its named poses, then random commands). Landmark error is in
pixels of the frame scaled to 512 px on its long side; coefficient error is the MAE over the 52.
speed: readouts per second on the same renders, MediaPipe one frame at a time against torch at
batch 1 and batch N (and tracking at batch N: crops from known landmarks, no detector), in one process with the same thread count, interleaved so a busy machine slows
both alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.expression import Expression
from facetwin.perception import FacePerceiver, read_image

SIZE = 512
QUICK_RANDOM, FULL_RANDOM = 30, 482  # with the 18 named poses: 48 and 500 renders
BATCHES = (1, 16, 64)
GPU_BATCHES = (1, 64, 256)


@dataclass
class Agreement:
    frames: int
    faces_both: int
    found_mismatch: int  # frames where one engine found a face and the other did not
    landmark_px_max: float  # over all frames and landmarks, at 512 px
    landmark_px_p99: float
    coeff_mae_mean: float
    coeff_mae_max: float  # the worst frame's MAE over the 52 coefficients
    head_deg_max: float

    def as_dict(self) -> dict:
        return dict(vars(self))


def compare(reference: list[Expression], torch_read: list[Expression]) -> Agreement:
    """Per-frame agreement of two engines' readouts of the same frames."""
    px, mae, head, mismatch = [], [], [], 0
    for ref, got in zip(reference, torch_read, strict=True):
        if ref.face_found != got.face_found:
            mismatch += 1
            continue
        if not ref.face_found:
            continue
        scale = SIZE / max(ref.image_size)
        px.append(np.abs(ref.landmarks[:, :2] - got.landmarks[:, :2]).max(axis=1) * scale)
        mae.append(float(np.abs(ref.blendshapes - got.blendshapes).mean()))
        head.append(float(np.abs(ref.head - got.head).max()))
    flat = np.concatenate(px) if px else np.zeros(1)
    return Agreement(len(reference), len(mae), mismatch, float(flat.max()), float(np.percentile(flat, 99)),
                     float(np.mean(mae)) if mae else 0.0, float(np.max(mae)) if mae else 0.0, float(max(head, default=0.0)))


def twin_frames(twin, n_random: int, seed: int = 0) -> list[np.ndarray]:
    """512 px renders: every named pose, then ``n_random`` random commands (uniform in +-0.5, as the camera bench)."""
    from facetwin.motion.poses import NAMED_POSES, named_pose

    commands = [named_pose(name, twin.spec) for name in NAMED_POSES]
    commands += list(np.random.default_rng(seed).uniform(-1, 1, size=(n_random, twin.spec.n)) * 0.5)
    frames = []
    for command in commands:
        twin.reset(readout=False)
        twin.apply(command, readout=False)
        frames.append(twin.render(SIZE))
    twin.reset(readout=False)
    return frames


def photo_frames(faces_dir: Path) -> list[np.ndarray]:
    return [read_image(p) for p in sorted((faces_dir / "images").glob("*.jpg"))]


def mediapipe_read(frames: list[np.ndarray], bundle=None) -> list[Expression]:
    with FacePerceiver(bundle, mode="image", max_faces=1) as perceiver:
        return [perceiver.perceive(f) for f in frames]


def speed(frames: list[np.ndarray], landmarker, bundle=None, batches=BATCHES, rounds: int = 2) -> dict:
    """Readouts/s of MediaPipe (one frame at a time) and of torch at each batch size, interleaved per round."""
    import torch

    stack = np.stack(frames)
    seconds = {"mediapipe": 0.0, **{f"torch_b{b}": 0.0 for b in batches}, f"torch_track_b{batches[-1]}": 0.0}
    counts = dict.fromkeys(seconds, 0)
    with FacePerceiver(bundle, mode="image", max_faces=1) as perceiver:
        perceiver.perceive(frames[0])
        landmarker.detect(stack[:1])  # first calls pay for allocation, not for reading
        for _ in range(rounds):
            t = time.perf_counter()
            for f in frames:
                perceiver.perceive(f)
            seconds["mediapipe"] += time.perf_counter() - t
            counts["mediapipe"] += len(frames)
            for b in batches:
                n = max(b, len(frames) // b * b)
                data = np.resize(stack, (n, *stack.shape[1:]))  # whole batches, repeating frames if too few
                t = time.perf_counter()
                for start in range(0, n, b):
                    landmarker.detect(data[start:start + b])
                seconds[f"torch_b{b}"] += time.perf_counter() - t
                counts[f"torch_b{b}"] += n
            # the tracking crop (no detector) at the largest batch, from each frame's own detected face
            b = batches[-1]
            data = np.resize(stack, (b, *stack.shape[1:]))
            previous = landmarker.detect(data)
            t = time.perf_counter()
            landmarker.track(data, previous)
            seconds[f"torch_track_b{b}"] += time.perf_counter() - t
            counts[f"torch_track_b{b}"] += b
    per_s = {f"{k}_per_s": counts[k] / seconds[k] for k in seconds}
    base = per_s["mediapipe_per_s"]
    ratios = {f"{k[:-len('_per_s')]}_ratio": v / base for k, v in per_s.items() if k.startswith("torch")}
    return {**per_s, **ratios,
            "torch_threads": torch.get_num_threads(), "device": str(landmarker.device), "frames": len(frames)}


def run(quick: bool, *, faces_dir: Path | None = None) -> dict:
    """Agreement and speed on the CPU, and on CUDA where torch sees a GPU."""
    import torch

    from facetwin.sim.twin import FaceTwin

    faces_dir = faces_dir or Path(__file__).resolve().parents[2].parent / "shared" / "faces"
    with FaceTwin() as twin:
        sets = {"twin": twin_frames(twin, QUICK_RANDOM if quick else FULL_RANDOM)}
    if (faces_dir / "images").is_dir():
        sets["photos"] = photo_frames(faces_dir)
    reference = {name: mediapipe_read(frames) for name, frames in sets.items()}
    out: dict = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core for each engine, as MediaPipe's CPU graph reads a frame
    try:
        for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
            out[device] = _on_device(device, sets, reference, quick)
    finally:
        torch.set_num_threads(threads)
    return out


def _on_device(device: str, sets: dict, reference: dict, quick: bool) -> dict:
    from facetwin.perception.torch_landmarker import TorchFaceLandmarker

    landmarker = TorchFaceLandmarker(device=device)
    res: dict = {}
    for name, frames in sets.items():
        got = [r.expression() for r in landmarker.detect(frames)]
        res[f"agreement_{name}"] = compare(reference[name], got).as_dict()
    renders = sets["twin"][: 16 if quick else 64]
    batches = (1, 16) if quick else (BATCHES if device == "cpu" else GPU_BATCHES)
    res["speed"] = speed(renders, landmarker, batches=batches)
    return res
