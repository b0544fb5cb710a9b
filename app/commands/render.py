"""`facetwin render` and `facetwin texture`: pictures of the twin, and a face photo as its skin."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, face_spec
from facetwin.spec import DEFAULT_FACE


def register(sub) -> None:
    p = sub.add_parser("render", help="render the twin in a named pose or for a servo command vector")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--pose", help="a named pose (neutral, smile, ...; see --list)")
    what.add_argument("--action", help="one comma-separated command in [-1, 1] per servo, in the face spec's order")
    what.add_argument("--sheet", action="store_true", help="a contact sheet of every named pose")
    what.add_argument("--list", action="store_true", help="list the named poses and exit")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--out", type=Path, help="output PNG")
    p.add_argument("--texture", type=Path, help="skin: a texture from `facetwin texture`, or a face photo")
    p.add_argument("--landmarker", type=Path, help="face_landmarker.task (else $FACETWIN_FACE_LANDMARKER)")
    add_face_option(p)
    p.set_defaults(func=run_render)

    t = sub.add_parser("texture", help="turn a face photo into the twin's skin texture")
    t.add_argument("photo", type=Path)
    t.add_argument("--out", type=Path, default=Path("skin.png"), help="texture PNG (UVs go beside it as .uv.npy)")
    t.add_argument("--preview", type=Path, help="also render the textured twin to this PNG")
    t.add_argument("--landmarker", type=Path)
    add_face_option(t, default=f"{DEFAULT_FACE}; the face --preview renders (a texture fits every face: one skin mesh)")
    t.set_defaults(func=run_texture)


def _texture_from(path: Path, landmarker):
    from facetwin.perception import PerceptionError, detect_face_landmarks, read_image
    from facetwin.sim.texture import SkinTexture, TextureError, photo_texture

    uv_file = path.with_suffix(".uv.npy")
    try:
        rgb = read_image(path)
    except PerceptionError as exc:
        raise CLIError(str(exc)) from exc
    if uv_file.is_file():
        return SkinTexture(image=rgb, uvs=np.load(uv_file), source=str(path))
    landmarks = detect_face_landmarks(rgb, bundle=landmarker)
    if landmarks is None:
        raise CLIError(f"no face found in {path}; use a frontal photo with the whole face visible")
    try:
        return photo_texture(rgb, landmarks, source=str(path))
    except TextureError as exc:
        raise CLIError(str(exc)) from exc


def _twin(args):
    from facetwin.landmarker_bundle import LandmarkerModelError
    from facetwin.sim.twin import FaceTwin

    try:
        texture = _texture_from(args.texture, args.landmarker) if args.texture else None
        return FaceTwin(face_spec(args), bundle=args.landmarker, texture=texture, blendshapes=False)
    except LandmarkerModelError as exc:
        raise CLIError(str(exc)) from exc


def parse_action(text: str, spec) -> np.ndarray:
    from facetwin.spec import CommandError

    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError as exc:
        raise CLIError(f"--action must be comma-separated numbers: {exc}") from exc
    try:
        return spec.check_command(values)
    except CommandError as exc:
        raise CLIError(str(exc)) from exc


def run_render(args: argparse.Namespace) -> int:
    from facetwin.app.spec_check import face_poses
    from facetwin.motion.poses import named_pose

    if args.list:
        print("\n".join(face_poses(face_spec(args))))  # the poses this face has the mechanism for
        return 0
    if args.out is None:
        raise CLIError("--out PATH.png is required")
    if not 64 <= args.size <= 1024:
        raise CLIError(f"--size must be between 64 and 1024 pixels, got {args.size}")
    twin = _twin(args)
    if args.sheet:
        from facetwin.sim.sheet import pose_sheet

        image = pose_sheet(twin, face_poses(twin.spec), args.size)
    else:
        if args.pose is not None:
            try:
                command = named_pose(args.pose, twin.spec)
            except KeyError as exc:
                raise CLIError(exc.args[0]) from exc
        else:
            command = parse_action(args.action, twin.spec)
        twin.apply(command, readout=False)
        image = twin.render(args.size)
    _write_png(args.out, image)
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})")
    return 0


def run_texture(args: argparse.Namespace) -> int:
    from facetwin.sim.texture import save_texture

    texture = _texture_from(args.photo, args.landmarker)
    if args.photo.with_suffix(".uv.npy").is_file():
        raise CLIError(f"{args.photo} is already a facetwin texture")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_texture(texture, args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.uv.npy')}")
    if args.preview:
        from facetwin.sim.twin import FaceTwin

        twin = FaceTwin(face_spec(args), bundle=args.landmarker, texture=texture, blendshapes=False)
        _write_png(args.preview, twin.render(512))
        print(f"wrote {args.preview}")
    return 0


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise CLIError(f"could not write {path}")
