"""`facetwin perceive`: expressions (52 blendshapes + head angles) of the face in images, videos or a webcam."""

from __future__ import annotations

import time

import numpy as np

from facetwin.expression import ACTIVE_BLENDSHAPES, BLENDSHAPE_NAMES

ENGINES = ("mediapipe", "torch")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "perceive",
        help="read facial expressions from an image, a folder of images, a video or a webcam",
        description="Run MediaPipe's Face Landmarker on every frame: 52 blendshape coefficients and "
        "head yaw/pitch/roll for the largest face; frames without a face are kept and flagged. "
        "--engine torch runs the bundle's same three networks in torch (CPU or CUDA) with MediaPipe's crops.",
    )
    p.add_argument("source", metavar="PATH", help="image, folder of images, video file, or webcam:N")
    p.add_argument("--out", metavar="FILE", help="write one row per frame to FILE (.parquet with landmarks, or .json)")
    p.add_argument("--smooth", action="store_true", help="One-Euro filter over time (videos and webcams)")
    p.add_argument("--max-faces", type=int, default=4, metavar="N", help="faces to look for; the largest is reported (default 4)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames (e.g. for a webcam)")
    p.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task (default: $FACETWIN_FACE_LANDMARKER or the cache)")
    p.add_argument("--engine", choices=ENGINES, default="mediapipe",
                   help="mediapipe (its own runtime) or torch (the same networks in torch); default mediapipe")
    p.add_argument("--device", default="cpu", metavar="DEV", help="cpu or cuda, for --engine torch (default cpu)")
    p.set_defaults(func=run)


def run(args) -> int:
    from facetwin.app.cli import CLIError
    from facetwin.landmarker_bundle import LandmarkerModelError
    from facetwin.perception import OneEuroConfig, PerceptionError, open_source
    from facetwin.perception.export import PerceivedFrame, check_output_path, write_perceived

    if args.max_faces < 1:
        raise CLIError("--max-faces must be at least 1")
    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError("--max-frames must be at least 1")
    if args.engine != "torch" and args.device != "cpu":
        raise CLIError("--device selects where --engine torch runs; MediaPipe's engine runs on the CPU")
    records: list[PerceivedFrame] = []
    try:
        out = check_output_path(args.out) if args.out else None
        with open_source(args.source) as source:
            if args.smooth and source.kind == "image":
                raise CLIError("--smooth joins consecutive frames: use it with a video or a webcam, not still images")
            mode = "image" if source.kind == "image" else "video"
            smoothing = OneEuroConfig() if args.smooth else None
            with open_perceiver(args, mode, smoothing) as perceiver:
                start = time.perf_counter()
                try:
                    for frame in source:
                        if args.max_frames is not None and len(records) >= args.max_frames:
                            break
                        expr = perceiver.perceive(frame.rgb, frame.timestamp)
                        records.append(PerceivedFrame(frame.path, frame.index, expr))
                except KeyboardInterrupt:
                    print("interrupted: keeping the frames read so far")
                elapsed = time.perf_counter() - start
    except (PerceptionError, LandmarkerModelError) as exc:
        raise CLIError(str(exc)) from exc
    if out is not None:
        write_perceived(out, records)
    print(summary(args.source, records, elapsed) + (f"\nengine: torch on {args.device}" if args.engine == "torch" else ""))
    if out is not None:
        print(f"wrote {len(records)} rows to {out}")
    return 0


def open_perceiver(args, mode: str, smoothing):
    """The engine asked for, behind one interface: perceive(rgb, timestamp) -> Expression."""
    if args.engine == "torch":
        from facetwin.perception.torch_landmarker.perceiver import TorchPerceiver

        return TorchPerceiver(args.landmarker, device=args.device, mode=mode, max_faces=args.max_faces, smoothing=smoothing)
    from facetwin.perception import FacePerceiver

    return FacePerceiver(args.landmarker, mode=mode, max_faces=args.max_faces, smoothing=smoothing)


def summary(source: str, records, elapsed_s: float, top: int = 5) -> str:
    found = [r.expression for r in records if r.expression.face_found]
    n = len(records)
    lines = [
        f"{source}: {n} frame{'s' if n != 1 else ''}, face found in {len(found)}"
        + (f" ({100.0 * len(found) / n:.0f}%)" if n else "")
        + (f", {1000.0 * elapsed_s / n:.1f} ms/frame" if n else "")
    ]
    if found:
        mean = np.mean([e.blendshapes for e in found], axis=0)
        head = np.mean([e.head for e in found], axis=0)
        order = sorted(ACTIVE_BLENDSHAPES, key=lambda i: -mean[i])[:top]
        lines.append("top blendshapes (mean): " + ", ".join(f"{BLENDSHAPE_NAMES[i]} {mean[i]:.2f}" for i in order))
        lines.append(f"head (mean deg): yaw {head[0]:+.1f}, pitch {head[1]:+.1f}, roll {head[2]:+.1f}")
    return "\n".join(lines)
