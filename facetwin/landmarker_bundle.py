"""Where MediaPipe's Face Landmarker bundle comes from, and what is inside it.

The bundle (`face_landmarker.task`, Apache-2.0) is never part of the project: it is found through
``FACETWIN_FACE_LANDMARKER`` or an explicit path, else in the user cache, else downloaded once from
MediaPipe's official location and checked against a pinned sha256.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ENV_VAR = "FACETWIN_FACE_LANDMARKER"
SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    "face_landmarker.task"
)
MESH_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
BLENDSHAPES_MEMBER = "face_blendshapes.tflite"


class LandmarkerModelError(RuntimeError):
    """The landmarker bundle is missing, unreadable or not the expected file."""


HOW_TO_PROVIDE = (
    f"Provide MediaPipe's face_landmarker.task: set {ENV_VAR}=/path/to/face_landmarker.task, "
    f"pass --landmarker PATH, or connect to the internet once so it can be downloaded from {URL} "
    f"into {{cache}}."
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facetwin"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: Path, source: str) -> Path:
    if not path.is_file():
        raise LandmarkerModelError(
            f"{source} points to {path}, which does not exist. "
            + HOW_TO_PROVIDE.format(cache=cache_dir())
        )
    if not zipfile.is_zipfile(path):
        raise LandmarkerModelError(
            f"{path} (from {source}) is not a MediaPipe .task bundle (not a zip archive). "
            + HOW_TO_PROVIDE.format(cache=cache_dir())
        )
    return path


def download(dest: Path, url: str = URL, timeout: float = 30.0) -> Path:
    """Download the bundle to ``dest`` atomically, refusing anything whose sha256 differs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        got = sha256_of(Path(tmp))
        if got != SHA256:
            raise LandmarkerModelError(
                f"downloaded {url} but its sha256 is {got}, expected {SHA256}; refusing to use it."
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def resolve(path: str | os.PathLike | None = None, *, allow_download: bool = True) -> Path:
    """Return the path of ``face_landmarker.task``: explicit path, env var, user cache, download."""
    if path is not None:
        return _check_file(Path(path).expanduser(), "--landmarker")
    env = os.environ.get(ENV_VAR)
    if env:
        return _check_file(Path(env).expanduser(), ENV_VAR)
    cached = cache_dir() / "face_landmarker.task"
    if cached.is_file():
        return cached
    if not allow_download:
        raise LandmarkerModelError(
            "face_landmarker.task not found. " + HOW_TO_PROVIDE.format(cache=cache_dir())
        )
    try:
        return download(cached)
    except LandmarkerModelError:
        raise
    except OSError as exc:
        raise LandmarkerModelError(
            f"face_landmarker.task not found and downloading it failed ({exc}). "
            + HOW_TO_PROVIDE.format(cache=cache_dir())
        ) from exc


def read_member(bundle: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(bundle) as zf:
            return zf.read(member)
    except KeyError as exc:
        raise LandmarkerModelError(f"{bundle} has no {member}: is it a Face Landmarker bundle?") from exc


# --- the canonical face mesh -------------------------------------------------------------------
# geometry_pipeline_metadata_landmarks.binarypb is a GeometryPipelineMetadata protobuf. mediapipe's
# wheel does not ship its Python message classes, so the few fields needed are read off the wire
# format directly (varint keys, length-delimited packed arrays).


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def protobuf_fields(buf: bytes):
    """(field number, wire type, value) of each field of a protobuf message, without its schema."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        else:
            raise LandmarkerModelError(f"unsupported protobuf wire type {wire} in canonical mesh")
        yield field, wire, value


def _packed_varints(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


@dataclass(frozen=True)
class CanonicalMesh:
    """MediaPipe's canonical face: vertex i is landmark i (centimetres, +y up, +z towards the viewer)."""

    vertices: np.ndarray  # (468, 3) float32, cm
    uvs: np.ndarray  # (468, 2) float32, texture coordinates, v pointing down the image
    faces: np.ndarray  # (898, 3) int32, counter-clockwise seen from the front


def parse_canonical_mesh(blob: bytes) -> CanonicalMesh:
    # The note in shared/ says field 3; the wire shows canonical_mesh as field 1 (input_source is 3).
    mesh_bytes = next((v for f, w, v in protobuf_fields(blob) if f == 1 and w == 2), None)
    if mesh_bytes is None:
        raise LandmarkerModelError("geometry metadata holds no canonical_mesh")
    vbuf = ibuf = None
    indices: list[int] = []
    for f, w, v in protobuf_fields(mesh_bytes):
        if f == 3:
            vbuf = v if w == 2 else (vbuf or b"") + v
        elif f == 4:
            indices.extend(_packed_varints(v) if w == 2 else [v])
    if vbuf is None or not indices:
        raise LandmarkerModelError("canonical_mesh lacks a vertex or index buffer")
    data = np.frombuffer(vbuf, dtype="<f4").reshape(-1, 5)
    return CanonicalMesh(
        vertices=data[:, :3].copy(),
        uvs=data[:, 3:].copy(),
        faces=np.asarray(indices, dtype=np.int32).reshape(-1, 3),
    )


@lru_cache(maxsize=4)
def canonical_mesh(bundle: Path | None = None) -> CanonicalMesh:
    bundle = resolve(bundle) if bundle is None else Path(bundle)
    return parse_canonical_mesh(read_member(bundle, MESH_MEMBER))
