"""The expressions people make: every face in a folder of photos and videos, perceived once and cached.

Photos are read in image mode, each video in video mode (the landmarker's tracking, no smoothing, so
frames stay what the network saw). Frames without a face are counted and left out.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin import landmarker_bundle
from facetwin.expression import N_BLENDSHAPES, Expression
from facetwin.perception.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

CACHE_VERSION = 1  # bump when what is cached (or how it is perceived) changes


def shared_faces(sub: str = "") -> Path:
    """The labelled human faces the project is scored on: $FACETWIN_SHARED_FACES, else `../shared/faces`
    beside the checkout (the layout CI and the tests use)."""
    root = os.environ.get("FACETWIN_SHARED_FACES")
    base = Path(root) if root else Path(__file__).resolve().parents[1].parent / "shared" / "faces"
    return base / sub if sub else base


def shared_photo_targets(n: int) -> list[tuple[str, Expression]]:
    """The first n shared photos with a face, each as (file name, the person's Expression read in image mode):
    the targets the benches search for."""
    from facetwin.perception import FacePerceiver, open_source

    folder = shared_faces("images")
    found = []
    with open_source(str(folder)) as source, FacePerceiver(mode="image") as perceiver:
        for frame in source:
            target = perceiver.perceive(frame.rgb)
            if target.face_found:
                found.append((Path(frame.path).name, target))
            if len(found) == n:
                break
    if not found:
        raise FileNotFoundError(f"no face found in {folder}: put photos of people there, or set FACETWIN_SHARED_FACES")
    return found


@dataclass
class HumanFaces:
    """Perceived human frames, row i of each array being one frame with a face."""

    blendshapes: np.ndarray  # (M, 52) in BLENDSHAPE_NAMES order
    head: np.ndarray  # (M, 3) yaw, pitch, roll (deg)
    source: np.ndarray  # (M,) str: file path relative to the faces folder
    frame: np.ndarray  # (M,) int: frame index in its file (0 for photos)
    frames_without_face: int = 0

    def __len__(self) -> int:
        return len(self.blendshapes)

    @property
    def n_files(self) -> int:
        return len(set(self.source.tolist()))


def face_files(root: str | Path) -> list[Path]:
    """Photos and videos under `root` (recursively), in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"faces folder {root} does not exist; pass the folder of human photos and videos (e.g. ../shared/faces)")
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(f"{root} holds no photos ({', '.join(IMAGE_SUFFIXES)}) or videos ({', '.join(VIDEO_SUFFIXES)})")
    return files


def perceive_files(files: list[Path], root: Path, bundle: str | os.PathLike | None = None) -> HumanFaces:
    from facetwin.perception import FacePerceiver, open_source

    blend, head, source, frame, missing = [], [], [], [], 0
    for path in files:
        with open_source(str(path)) as frames:
            mode = "image" if frames.kind == "image" else "video"
            with FacePerceiver(bundle, mode=mode) as perceiver:
                for f in frames:
                    expr = perceiver.perceive(f.rgb, f.timestamp)
                    if not expr.face_found:
                        missing += 1
                        continue
                    blend.append(expr.blendshapes)
                    head.append(expr.head)
                    source.append(path.relative_to(root).as_posix())
                    frame.append(f.index)
    if not blend:
        raise ValueError(f"no face found in any of the {len(files)} files under {root}")
    return HumanFaces(
        blendshapes=np.asarray(blend, np.float32).reshape(-1, N_BLENDSHAPES),
        head=np.asarray(head, np.float32).reshape(-1, 3),
        source=np.asarray(source),
        frame=np.asarray(frame, np.int64),
        frames_without_face=missing,
    )


def cache_key(files: list[Path], root: Path, bundle: Path) -> str:
    """Changes with any file's name, size or mtime, with the landmarker model, and with CACHE_VERSION."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    h.update(landmarker_bundle.sha256_of(bundle).encode())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    return landmarker_bundle.cache_dir() / "human_faces"


def load_human_faces(
    root: str | Path,
    *,
    bundle: str | os.PathLike | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> HumanFaces:
    """Every face in the photos and videos under `root`; cached under `cache_dir` (default: user cache)."""
    root = Path(root)
    files = face_files(root)
    bundle_path = landmarker_bundle.resolve(bundle)
    path = Path(cache_dir or default_cache_dir()) / f"{cache_key(files, root, bundle_path)}.npz"
    if use_cache and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return HumanFaces(z["blendshapes"], z["head"], z["source"], z["frame"], meta["frames_without_face"])
    faces = perceive_files(files, root, bundle_path)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
        meta = json.dumps({"root": str(root.resolve()), "frames_without_face": faces.frames_without_face})
        np.savez(tmp, blendshapes=faces.blendshapes, head=faces.head, source=faces.source, frame=faces.frame, meta=np.asarray(meta))
        os.replace(tmp, path)
    return faces
