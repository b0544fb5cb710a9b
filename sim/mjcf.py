"""MJCF for the face twin, laid out as MuJoCo Playground lays out its robots.

`assets/xmls/scene.xml` is committed and static: options, visual, the skin texture and materials, light,
camera and backdrop. It ends in `<include file="face.xml"/>`, and `face.xml` is generated here from the
face spec and the anatomy in `face_geometry`, one small builder per mechanism, composed by `build_face`.

Nothing is written into the package to load it: MuJoCo resolves `<include>` through the `assets` dict
of `MjModel.from_xml_string` as it does files, so `load_model` hands it the scene with
`{"face.xml": ..., "skin.png": ...}`. (`MjSpec.from_string` does not look in its `assets=` for
includes; it wants them under its own `include=` argument.) `build_mjcf` gives the
same model as one standalone document, with the include spliced in, for anyone who wants a single file;
`write_model` writes the scene, the part and the texture side by side, which MuJoCo's viewer opens as is.

Only MJX-friendly elements are used (hinge/slide joints, spatial tendons through sites, position
actuators); the skin mesh is a render-only `<skin>` bound to the bodies, so physics never sees it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import mujoco
import numpy as np

from facetwin.spec import FaceSpec, Servo
from facetwin.sim.face_geometry import (
    CABLE_STIFFNESS,
    EYE_RADIUS,
    IRIS_RADIUS,
    JAW_PIVOT,
    NECK_PIVOT,
    SCALE,
    SKIN_NODE_MASS,
    SKIN_STIFFNESS,
    TIE_STIFFNESS,
    FaceGeometry,
)
from facetwin.sim.face_topology import LEFT_IRIS, RIGHT_IRIS

SCENE = "scene.xml"
FACE_PART = "face.xml"
SKIN_TEXTURE = "skin.png"  # the texture file scene.xml names

# Servo loops per mechanism: (kp N*m/rad, joint armature kg*m^2, joint damping N*m*s/rad, torque limit N*m).
# Armature stands in for the geared servo's reflected inertia; damping makes each loop about critically
# damped, and torque limit / damping is the top speed a saturated loop reaches (~9 rad/s for the
# STS3032's 0.11 s per 60 degrees; slower for the heavier jaw and neck).
SERVO_LOOPS = {
    "cable": (30.0, 0.0002, 0.16, 1.5),
    "eyeball": (4.0, 0.00005, 0.03, 0.3),
    "eyelid": (4.0, 0.00005, 0.03, 0.3),
    "jaw": (60.0, 0.001, 0.9, 6.0),
    "neck": (200.0, 0.006, 4.3, 20.0),
}

# Where a builder's elements go: the "head" or "jaw" body, or the model's "tendon" section.
Fragments = dict[str, list[ET.Element]]


# -- the whole model -----------------------------------------------------------------------------
def model_name(spec: FaceSpec) -> str:
    return f"facetwin-{spec.name}"


def scene_xml(spec: FaceSpec) -> str:
    """The committed scene, named after the spec (MuJoCo takes the model name from the top file only)."""
    root = _parse((resources.files("facetwin.assets") / "xmls" / SCENE).read_text())
    root.set("model", model_name(spec))
    return ET.tostring(root, encoding="unicode")


def build_parts(spec: FaceSpec, geo: FaceGeometry) -> dict[str, str]:
    """The model as files: the scene and the face part it includes."""
    return {SCENE: scene_xml(spec), FACE_PART: build_face(spec, geo)}


def load_model(parts: Mapping[str, str], skin_png: bytes) -> mujoco.MjModel:
    assets = {name: text.encode() for name, text in parts.items() if name != SCENE}
    return mujoco.MjModel.from_xml_string(parts[SCENE], {**assets, SKIN_TEXTURE: skin_png})


def build_mjcf(spec: FaceSpec, geo: FaceGeometry) -> str:
    """The model as one standalone MJCF document (the skin texture still comes as `skin.png`)."""
    return resolve_includes(build_parts(spec, geo))


def resolve_includes(parts: Mapping[str, str]) -> str:
    """The scene with each `<include file=...>` replaced by the children of that part's root, as MuJoCo does."""
    root = _parse(parts[SCENE])
    for parent in list(root.iter()):
        for i, child in reversed(list(enumerate(parent))):
            if child.tag == "include":
                parent[i : i + 1] = list(_parse(parts[child.get("file")]))
    return ET.tostring(root, encoding="unicode")


def write_model(parts: Mapping[str, str], skin_png: bytes, out_dir: str | Path) -> Path:
    """Write the scene, its parts and the skin texture into one folder; returns the scene's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SKIN_TEXTURE).write_bytes(skin_png)
    for name, text in parts.items():
        (out / name).write_text(text)
    return out / SCENE


def build_face(spec: FaceSpec, geo: FaceGeometry) -> str:
    """face.xml: the head and everything the servos move, from the spec and the geometry."""
    head = _neck(spec)
    jaw = _jaw(spec)
    cables = _cables(spec, geo)
    band = _coupling_band(geo)
    # Order fixes element ids: sites on the jaw are the band's ties, then the cables' pulleys and guides.
    for fragments in (_eyes_and_lids(spec, geo), _mouth(), _skin_points(geo), band, cables):
        head.extend(fragments.get("head", []))
        jaw.extend(fragments.get("jaw", []))
    head.append(jaw)
    root = _el(
        "mujoco",
        _el("worldbody", head),
        _el("deformable", _skin(geo), _skin(geo, lining=True), *_shell_skins(geo)),
        _el("tendon", *cables["tendon"], *band["tendon"]),
        _el("actuator", *_actuators(spec)),
    )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


# -- one builder per mechanism -------------------------------------------------------------------
def _neck(spec: FaceSpec) -> ET.Element:
    """The head body on the neck servos, with the skull, hair and neck it carries."""
    return _el(
        "body",
        _el("inertial", pos="0 0.005 -0.04", mass="1.6", diaginertia="0.008 0.007 0.006"),
        *(_servo_joint(s, NECK_PIVOT, s.axis) for s in _of(spec, "neck")),
        _ellipsoid("skull", (7.3, 9.6, 8.6), (0, 0.8, -4.6), "head"),
        *(_ellipsoid(f"ear_{side}", (0.8, 2.6, 1.5), (sx * 7.7, 0.0, -4.2), "head") for side, sx in (("right", -1), ("left", 1))),
        _el(
            "geom", name="neck", type="capsule", size=_f(np.multiply((5.0, 5.0), SCALE)),
            pos=_f(np.multiply((0, -12.0, -5.0), SCALE)), euler="1.5708 0 0", material="head",
        ),
        name="head",
    )


def _jaw(spec: FaceSpec) -> ET.Element:
    return _el(
        "body",
        _el("inertial", pos="0 -0.06 0.02", mass="0.25", diaginertia="4e-4 4e-4 4e-4"),
        *(_servo_joint(s, JAW_PIVOT, s.axis) for s in _of(spec, "jaw")),
        name="jaw",
    )


def _mouth() -> Fragments:
    """What parted lips show: a dark cavity filling the space behind the lower face, the upper teeth on
    the skull, the lower teeth and the tongue on the jaw. The cavity reaches back to the skull so no view
    through the lips finds the inside of the skin (which the renderer culls) and the background beyond."""
    return {
        "head": [
            _ellipsoid("mouth_cavity_upper", (3.4, 2.8, 3.0), (0, -4.6, 1.8), "mouth"),
            _ellipsoid("teeth_upper", (1.85, 0.65, 0.62), (0, -4.0, 4.3), "teeth"),
        ],
        "jaw": [
            _ellipsoid("mouth_cavity_lower", (3.0, 1.6, 2.4), (0, -5.2, 2.4), "mouth"),
            _ellipsoid("teeth_lower", (1.7, 0.45, 0.58), (0, -4.6, 4.15), "teeth"),
            _ellipsoid("tongue", (1.7, 0.55, 1.9), (0, -5.05, 3.2), "tongue"),
        ],
    }


def _eyes_and_lids(spec: FaceSpec, geo: FaceGeometry) -> Fragments:
    """Each eye on its gaze servos, carrying the iris landmarks, and its lid on the same centre."""
    bodies = []
    for side, iris in (("right", RIGHT_IRIS), ("left", LEFT_IRIS)):
        centre = geo.eye_centers[side]
        bodies.append(
            _el(
                "body",
                _el("inertial", pos="0 0 0", mass="0.008", diaginertia="5e-7 5e-7 5e-7"),
                *(_servo_joint(s, [0, 0, 0], s.axis) for s in _of(spec, "eyeball") if f"_{side}_" in f"_{s.name}_"),
                _el("geom", type="sphere", size=EYE_RADIUS, material="sclera"),
                # The socket around the eyeball: what an oblique view through the lids finds behind it.
                _el(
                    "geom", type="ellipsoid", size=_f(np.multiply((1.5, 1.15, 1.0), EYE_RADIUS)),
                    pos=f"0 0 {-0.45 * EYE_RADIUS}", material="socket",
                ),
                _el(
                    "geom", type="ellipsoid", size=f"{IRIS_RADIUS} {IRIS_RADIUS} {0.12 * EYE_RADIUS}",
                    pos=f"0 0 {0.9 * EYE_RADIUS}", material="iris",
                ),
                _el(
                    "geom", type="ellipsoid", size=f"{0.45 * IRIS_RADIUS} {0.45 * IRIS_RADIUS} {0.1 * EYE_RADIUS}",
                    pos=f"0 0 {0.94 * EYE_RADIUS}", material="pupil",
                ),
                *(_el("site", name=f"iris_{lm}", pos=_f(p), size="0.0008") for lm, p in zip(iris, geo.iris_local)),
                name=f"eye_{side}", pos=_f(centre),
            )
        )
        lid = next(s for s in _of(spec, "eyelid") if s.name.endswith(side))
        bodies.append(
            _el(
                "body",
                _el("inertial", pos="0 0 0", mass="0.004", diaginertia="3e-7 3e-7 3e-7"),
                _servo_joint(lid, [0, 0, 0], lid.axis),
                name=lid.name, pos=_f(centre),
            )
        )
    return {"head": bodies}


def _skin_points(geo: FaceGeometry) -> Fragments:
    """The skin points (brows, lids, cheeks, lips): small masses on three springs back to rest."""
    damping = _skin_damping()
    out: Fragments = {"head": [], "jaw": []}
    for n in geo.nodes:
        slides = (
            _el(
                "joint", name=f"{n.name}_{ax}", type="slide", axis=_f(np.eye(3)[i]), stiffness=SKIN_STIFFNESS,
                damping=f"{damping:.6g}",
            )
            for i, ax in enumerate("xyz")
        )
        out[n.parent].append(
            _el(
                "body",
                _el("inertial", pos="0 0 0", mass=SKIN_NODE_MASS, diaginertia="1e-6 1e-6 1e-6"),
                *slides,
                _el("site", name=n.name, size="0.001"),
                name=n.name, pos=_f(n.rest),
            )
        )
    return out


def _cables(spec: FaceSpec, geo: FaceGeometry) -> Fragments:
    """Servo horns, the pulleys and guides each cable runs through, and the cables as spatial tendons."""
    servo = {s.name: s for s in spec.servos}
    out: Fragments = {"head": [], "jaw": [], "tendon": []}
    for h in geo.horns:
        tips = (
            _el("site", name=f"{c.name}_tip", pos=_f(c.tip - h.pivot), size="0.001")
            for c in geo.cables
            if c.servo == h.servo
        )
        out[h.parent].append(
            _el(
                "body",
                _el("inertial", pos="0 0 0", mass="0.002", diaginertia="1e-7 1e-7 1e-7"),
                _servo_joint(servo[h.servo], [0, 0, 0], h.axis),
                *tips,
                name=f"horn_{h.servo}", pos=_f(h.pivot),
            )
        )
    for c in geo.cables:
        out[c.parent].append(_el("site", name=f"{c.name}_pulley", pos=_f(c.pulley), size="0.001"))
        out[c.parent].append(_el("site", name=f"{c.name}_guide", pos=_f(c.guide), size="0.001"))
    node_rest = {n.name: n.rest for n in geo.nodes}
    for c in geo.cables:
        length = tendon_rest_length([c.tip, c.pulley, c.guide, node_rest[c.node]])
        route = [f"{c.name}_tip", f"{c.name}_pulley", f"{c.name}_guide", c.node]
        out["tendon"].append(_slack_spring(c.name, CABLE_STIFFNESS, length, route))
    return out


def _coupling_band(geo: FaceGeometry) -> Fragments:
    """The elastic band that ties each mouth-corner skin point to the jaw, so opening the jaw pulls the corners."""
    out: Fragments = {"jaw": [], "tendon": []}
    for n in geo.nodes:
        if n.tied_to_jaw:
            anchor = n.rest + np.array([0.0, -1.2, -0.4]) * SCALE
            out["jaw"].append(_el("site", name=f"{n.name}_tie", pos=_f(anchor), size="0.001"))
            length = float(np.linalg.norm(anchor - n.rest))
            out["tendon"].append(_slack_spring(f"{n.name}_tie", TIE_STIFFNESS, length, [f"{n.name}_tie", n.name]))
    return out


def _actuators(spec: FaceSpec) -> list[ET.Element]:
    """One position loop per servo, in spec order, so `ctrl` is the spec's command vector."""
    out = []
    for s in spec.servos:
        kp, _, _, force = SERVO_LOOPS[s.mechanism]
        lo, hi = np.radians(s.range_deg)
        out.append(
            _el(
                "position", name=s.name, joint=s.name, kp=kp, ctrlrange=f"{lo:.6g} {hi:.6g}",
                forcerange=f"{-force} {force}", forcelimited="true",
            )
        )
    return out


def _skin(geo: FaceGeometry, lining: bool = False) -> ET.Element:
    """The face mesh, skinned to the head, jaw, lids and skin points; render-only.

    `lining=True` gives its inner side: the same surface wound the other way in the mouth's dark
    material. The renderer culls a surface's back, so without it a view through the lips or past an
    eyeball would find no inside of the face, and show the background through the head.
    """
    bind = bone_bind_positions(geo)
    if lining:
        skin = _el(
            "skin", name="face_lining", material="mouth", vertex=_f(geo.vertices),
            face=" ".join(map(str, geo.faces[:, ::-1].ravel())),
        )
    else:
        skin = _el(
            "skin", name="face", material="skin", vertex=_f(geo.vertices),
            # MuJoCo's skin texcoords, like MediaPipe's UVs, have v pointing down the image.
            texcoord=_f(geo.uvs), face=" ".join(map(str, geo.faces.ravel())),
        )
    for j, name in enumerate(geo.bones):
        ids = np.flatnonzero(geo.weights[:, j] > 1e-6)
        if len(ids):
            skin.append(
                _el(
                    "bone", body=name, bindpos=_f(bind[name]), bindquat="1 0 0 0",
                    vertid=" ".join(map(str, ids)), vertweight=_f(geo.weights[ids, j]),
                )
            )
    return skin


def _shell_skins(geo: FaceGeometry) -> list[ET.Element]:
    """The back of the head, one skin per material, on the same bones and bind poses as the face."""
    bind = bone_bind_positions(geo)
    shell = geo.shell
    out = []
    for material, faces in shell.faces.items():
        used = np.unique(faces)
        local = np.full(len(shell.vertices), -1)
        local[used] = np.arange(len(used))
        skin = _el(
            "skin", name=f"shell_{material}", material=material, vertex=_f(shell.vertices[used]),
            face=" ".join(map(str, local[faces].ravel())),
        )
        w = shell.weights[used]
        for j, name in enumerate(geo.bones):
            ids = np.flatnonzero(w[:, j] > 1e-6)
            if len(ids):
                skin.append(
                    _el(
                        "bone", body=name, bindpos=_f(bind[name]), bindquat="1 0 0 0",
                        vertid=" ".join(map(str, ids)), vertweight=_f(w[ids, j]),
                    )
                )
        out.append(skin)
    return out


# -- shared pieces -------------------------------------------------------------------------------
def bone_bind_positions(geo: FaceGeometry) -> dict[str, np.ndarray]:
    """World position of each skinning bone's body at the neutral pose (head at the origin)."""
    pos = {"head": np.zeros(3), "jaw": np.zeros(3)}
    pos["eyelid_right"] = geo.eye_centers["right"]
    pos["eyelid_left"] = geo.eye_centers["left"]
    for n in geo.nodes:
        pos[n.name] = n.rest
    return pos


def tendon_rest_length(points: list[np.ndarray]) -> float:
    return float(sum(np.linalg.norm(b - a) for a, b in zip(points[:-1], points[1:])))


def _servo_joint(s: Servo, pos, axis) -> ET.Element:
    _, armature, damping, _ = SERVO_LOOPS[s.mechanism]
    lo, hi = np.radians(s.range_deg)
    return _el(
        "joint", name=s.name, type="hinge", pos=_f(pos), axis=_f(axis), range=f"{lo:.6g} {hi:.6g}",
        armature=armature, damping=damping, limited="true",
    )


def _slack_spring(name: str, stiffness: float, length: float, sites: list[str]) -> ET.Element:
    # Deadband [0, L0]: a cable or band pulls when stretched and goes slack instead of pushing.
    return _el(
        "spatial", *(_el("site", site=s) for s in sites),
        name=name, stiffness=stiffness, springlength=f"0 {length:.7g}", width="0.0006",
    )


def _ellipsoid(name: str, size_cm, pos_cm, material: str) -> ET.Element:
    """An ellipsoid sized and placed in the canonical face's centimetres."""
    size, pos = _f(np.multiply(size_cm, SCALE)), _f(np.multiply(pos_cm, SCALE))
    return _el("geom", name=name, type="ellipsoid", size=size, pos=pos, material=material)


def _of(spec: FaceSpec, mechanism: str) -> list[Servo]:
    return [s for s in spec.servos if s.mechanism == mechanism]


def _skin_damping() -> float:
    # Critically damped with its cables slack (the slowest case); under a taut cable it rings briefly.
    return 2.0 * np.sqrt(SKIN_STIFFNESS * SKIN_NODE_MASS)


def _f(values) -> str:
    return " ".join(f"{x:.6g}" for x in np.ravel(values))


def _el(tag: str, *children: ET.Element, **attrib) -> ET.Element:
    el = ET.Element(tag, {k: str(v) for k, v in attrib.items()})
    el.extend(children)
    return el


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
