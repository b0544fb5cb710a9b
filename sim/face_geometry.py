"""The twin's anatomy, derived from MediaPipe's canonical face and the face spec.

Everything is expressed in the head frame of the canonical face (metres; x: subject's left, y: up,
z: forwards, towards the camera). The skin is the canonical 468-vertex mesh; the mechanism under it:

* skin points — small bodies on spring-loaded slide joints at the landmarks the spec's cable servos
  pull (`pulls`), children of the skull or of the jaw;
* cables — for each cable servo and direction, a spatial tendon horn tip -> routing pulley -> guide ->
  skin point; the guide sits on the skull along the spec's `pull` direction;
* linkages — eyeballs (two hinges each), upper eyelids (a hinge at the eyeball centre carrying the lid
  margin), the jaw (a hinge carrying the lower face) and the neck (three hinges carrying the head);
* ties — the mouth-corner skin points are tied to the jaw by an elastic band, which is the mechanical
  coupling of corners and jaw.

How each of the 468 vertices follows the bodies is linear-blend skinning with weights computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.landmarker_bundle import CanonicalMesh
from facetwin.spec import FaceSpec, Servo
from facetwin.sim import face_topology as topo
from facetwin.sim.head_shell import HeadShell, build_shell

CM = 0.01
SCALE = 1.05 * CM  # canonical centimetres -> metres, scaled to an adult head
EYE_RADIUS = 1.2 * CM
IRIS_RADIUS = 0.56 * CM
NECK_PIVOT = np.array([0.0, -6.5, -4.0]) * SCALE
JAW_PIVOT = np.array([0.0, -2.0, -6.0]) * SCALE
GUIDE_DISTANCE = 1.6 * CM  # skin point -> guide, at least
HORN_DEPTH = 4.0 * CM  # guide -> horn, into the skull
ROUTE_RADII = 3.0  # horn tip -> routing pulley, in horn radii: the tip must never swing past its pulley

# Skin mechanics: silicone held by springs; steel-cored cables much stiffer.
SKIN_STIFFNESS = 300.0  # N/m per axis
CABLE_STIFFNESS = 3000.0  # N/m
TIE_STIFFNESS = 300.0  # N/m, corner-to-jaw band
SKIN_NODE_MASS = 0.02  # kg, the skin patch a point carries
UPPER_LID_OPEN_DEG = 9.0
LOWER_LID_OPEN_DEG = 3.0
FOREHEAD_FROM, FOREHEAD_SCALE = 5.2, 0.55  # canonical cm above which the forehead is compressed
CHIN_FROM, CHIN_SCALE = -6.0, 0.8
LIP_CLOSE_CM = 0.45  # of the canonical 0.55 cm gap between the inner lips
# Brow skin starts this many mesh rows out from the lid margin (row 0, which stays with the lid): the crease.
BROW_FOLD_ROW = 1
BROW_FLOOR_CM = 0.3  # and fades out over this height, centred on the eye line

LOWER_LIP = set(topo.LIPS_OUTER_LOWER) | set(topo.LIPS_INNER_LOWER)
UPPER_LIP = set(topo.LIPS_OUTER_UPPER) | set(topo.LIPS_INNER_UPPER)
BROWS = set(topo.RIGHT_BROW) | set(topo.LEFT_BROW)


@dataclass(frozen=True)
class SkinNode:
    name: str
    landmark: int
    parent: str  # "head" or "jaw"
    rest: np.ndarray  # (3,) head frame
    sigma: float  # radius of skin it drags (m)
    tied_to_jaw: bool


@dataclass(frozen=True)
class Cable:
    name: str
    servo: str
    sign: int  # +1: tightens on positive command
    node: str
    parent: str  # body that carries horn, pulley and guide
    tip: np.ndarray  # horn tip at neutral (head frame)
    pulley: np.ndarray
    guide: np.ndarray


@dataclass(frozen=True)
class Horn:
    servo: str
    parent: str
    pivot: np.ndarray
    axis: np.ndarray
    radius: float


@dataclass(frozen=True)
class FaceGeometry:
    vertices: np.ndarray  # (468, 3) rest positions, head frame, m
    uvs: np.ndarray  # (468, 2)
    faces: np.ndarray  # (F, 3) with the eye and mouth openings cut out
    eye_centers: dict  # "right"/"left" -> (3,)
    iris_local: np.ndarray  # (5, 3) iris landmark sites in the eyeball frame (centre, +x, +y, -x, -y)
    nodes: tuple[SkinNode, ...]
    horns: tuple[Horn, ...]
    cables: tuple[Cable, ...]
    bones: tuple[str, ...]  # body names, in the column order of `weights`
    weights: np.ndarray  # (468, n_bones) skinning weights, rows sum to 1
    shell: HeadShell  # the back of the head, stitched to the mask's outer border


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _cut_openings(faces: np.ndarray) -> np.ndarray:
    keep = np.ones(len(faces), bool)
    for ring in topo.OPENINGS:
        inside = np.isin(faces, ring).all(axis=1)
        keep &= ~inside
    return faces[keep]


def _eye_center(v: np.ndarray, upper, lower) -> np.ndarray:
    ring = v[list(upper) + list(lower)]
    c = ring.mean(axis=0)
    c[2] = ring[:, 2].max() - EYE_RADIUS - 0.05 * CM  # eyeball front just behind the lid margin
    return c


def _sculpt_eyes(v: np.ndarray, centers: dict) -> np.ndarray:
    """Open the canonical (average, half-lidded) eyes to the robot's sculpted rest opening.

    MediaPipe's mean face has a 7 mm lid gap over a 12 mm iris, which its own blendshape model reads as
    looking down and squinting; the robot's skin is moulded with the lids about 10 mm apart, as in an
    attentive neutral face.
    """
    v = v.copy()
    for side, upper, lower, crease in (
        ("right", topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER, topo.RIGHT_LID_CREASE),
        ("left", topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER, topo.LEFT_LID_CREASE),
    ):
        c = centers[side]
        for ids, angle in ((upper[1:-1], -UPPER_LID_OPEN_DEG), (crease, -0.5 * UPPER_LID_OPEN_DEG), (lower[1:-1], LOWER_LID_OPEN_DEG)):
            a = np.radians(angle)
            rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
            v[list(ids)] = (v[list(ids)] - c) @ rot.T + c
    return v


def _sculpt_proportions(v: np.ndarray) -> np.ndarray:
    """A lower forehead and a shorter chin than the canonical mesh.

    MediaPipe's landmark model, shown the canonical proportions, puts the top of the face ~1.4 cm
    below the mesh's and the chin ~0.5 cm above it; its blendshape model was trained on such outputs.
    Moulding the skin to those proportions lets the fast path and the pixel path read one face.
    """
    v = v.copy()
    y = v[:, 1] / SCALE
    v[:, 1] = np.where(y > FOREHEAD_FROM, FOREHEAD_FROM + (y - FOREHEAD_FROM) * FOREHEAD_SCALE, y) * SCALE
    y = v[:, 1] / SCALE
    v[:, 1] = np.where(y < CHIN_FROM, CHIN_FROM + (y - CHIN_FROM) * CHIN_SCALE, y) * SCALE
    return v


def _sculpt_lips(v: np.ndarray) -> np.ndarray:
    """Close the canonical face's parted lips: the robot's neutral mouth is shut, lips just touching."""
    v = v.copy()
    for ids, dy in ((topo.LIPS_INNER_UPPER, -LIP_CLOSE_CM / 2), (topo.LIPS_INNER_LOWER, LIP_CLOSE_CM / 2)):
        ids = list(ids)
        taper = np.clip(1.0 - np.abs(v[ids, 0]) / (2.2 * SCALE), 0.0, 1.0) ** 0.5
        v[ids, 1] += dy * SCALE * taper
    return v


def _jaw_weight(v: np.ndarray) -> np.ndarray:
    """How much each vertex rides on the jaw: the lower lip and chin fully, the upper face not at all."""
    x, y = v[:, 0] / SCALE, v[:, 1] / SCALE
    line = -4.3 + 0.55 * np.maximum(0.0, np.abs(x) - 2.4)  # the jaw line rises towards the ears
    w = _smoothstep((line - y) / 0.9 + 0.35)
    w[list(UPPER_LIP)] = 0.0
    w[list(LOWER_LIP)] = 1.0
    w[list(topo.MOUTH_CORNERS_INNER)] = 0.5
    return w


def _node_specs(spec: FaceSpec):
    """Skin points, one per landmark pulled by a cable servo, with the reach of skin each drags."""
    sigmas = {"brows": 2.2, "mouth": 0.9}
    nodes: dict[int, tuple[str, float]] = {}
    for s in spec.servos:
        if s.mechanism != "cable":
            continue
        for lm in s.pulls:
            sigma = sigmas.get(s.region, 1.0)
            if lm in topo.MOUTH_CORNERS_OUTER:
                sigma = 1.1
            nodes.setdefault(lm, (s.region, sigma))
    return nodes


def build_geometry(spec: FaceSpec, mesh: CanonicalMesh) -> FaceGeometry:
    v = _sculpt_proportions(mesh.vertices.astype(np.float64) * SCALE)
    eye_centers = {
        "right": _eye_center(v, topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER),
        "left": _eye_center(v, topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER),
    }
    v = _sculpt_lips(_sculpt_eyes(v, eye_centers))
    zr = np.sqrt(EYE_RADIUS**2 - IRIS_RADIUS**2)
    iris_local = np.array(
        [[0, 0, EYE_RADIUS], [IRIS_RADIUS, 0, zr], [0, IRIS_RADIUS, zr], [-IRIS_RADIUS, 0, zr], [0, -IRIS_RADIUS, zr]]
    )

    # --- skin points --------------------------------------------------------------------------
    nodes = []
    for lm, (region, sigma) in _node_specs(spec).items():
        corner = lm in topo.MOUTH_CORNERS_OUTER
        parent = "jaw" if lm in LOWER_LIP else "head"
        nodes.append(SkinNode(f"skin_{lm}", lm, parent, v[lm].copy(), sigma * CM, tied_to_jaw=corner))
    node_by_lm = {n.landmark: n for n in nodes}

    # --- horns and cables ---------------------------------------------------------------------
    horns, cables = [], []
    for k, s in enumerate(spec.servos):
        if s.mechanism != "cable":
            continue
        horns_nodes = [node_by_lm[lm] for lm in s.pulls]
        parent = horns_nodes[0].parent
        centre = np.mean([n.rest for n in horns_nodes], axis=0)
        pivot = centre + np.array([0.0, 0.0, -HORN_DEPTH]) + np.array([0.0, 0.002 * (k % 3), 0.0])
        radius = _horn_radius(s)
        horns.append(Horn(s.name, parent, pivot, np.array([0.0, 1.0, 0.0]), radius))
        for sign, direction, travel in ((+1, s.pull_positive, s.travel_mm[1]), (-1, s.pull_negative, s.travel_mm[0])):
            # A guide closer than the travel would let the skin point be pulled through it and ring around it.
            reach = max(GUIDE_DISTANCE, 2.0 * travel * 1e-3)
            # Positive rotation about +y swings the +x tip backwards (-z): that tip's cable tightens.
            tip = pivot + np.array([sign * radius, 0.0, 0.0])
            pulley = tip + np.array([0.0, 0.0, ROUTE_RADII * radius])
            for j, n in enumerate(horns_nodes):
                d = np.array(direction, dtype=np.float64)
                if s.mirror_pairs and j % 2 == 1:
                    d[0] = -d[0]
                d /= np.linalg.norm(d)
                cables.append(
                    Cable(
                        name=f"{s.name}_{'pos' if sign > 0 else 'neg'}_{n.landmark}",
                        servo=s.name,
                        sign=sign,
                        node=n.name,
                        parent=parent,
                        tip=tip,
                        pulley=pulley,
                        guide=n.rest + d * reach,
                    )
                )

    faces = _cut_openings(mesh.faces)
    bones, weights = _skin_weights(v, faces, nodes)
    return FaceGeometry(
        vertices=v,
        uvs=mesh.uvs.astype(np.float64),
        faces=faces,
        eye_centers=eye_centers,
        iris_local=iris_local,
        nodes=tuple(nodes),
        horns=tuple(horns),
        cables=tuple(cables),
        bones=bones,
        weights=weights,
        shell=build_shell(v, faces, topo.OPENINGS, weights, SCALE),
    )


def _horn_radius(s: Servo) -> float:
    """The horn radius that moves the skin `travel_mm` at full command.

    The skin point and cable are springs in series, so a horn excursion r*theta moves the skin by
    r*theta * k_cable / (k_cable + k_skin). One radius serves both cables: while one pulls, the other
    pays out as much as the horn turns, more than the skin moves, so it stays slack (the spec keeps
    travel_mm in the ratio of range_deg's two sides).
    """
    share = CABLE_STIFFNESS / (CABLE_STIFFNESS + SKIN_STIFFNESS)
    return float(s.travel_mm[1] * 1e-3 / (np.radians(s.range_deg[1]) * share))


def _rows_from_eyes(faces: np.ndarray, n: int) -> np.ndarray:
    """Each vertex's mesh row counted out from the eye openings: 0 on the lid margins, 1 on the crease."""
    adjacent = np.zeros((n, n), bool)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        adjacent[faces[:, a], faces[:, b]] = adjacent[faces[:, b], faces[:, a]] = True
    rows = np.full(n, np.iinfo(np.int32).max)
    frontier = np.zeros(n, bool)
    frontier[list(topo.OPENINGS[0] + topo.OPENINGS[1])] = True
    row = 0
    while frontier.any():
        rows[frontier] = row
        frontier = adjacent[frontier].any(axis=0) & (rows > row)
        row += 1
    return rows


def _skin_weights(v: np.ndarray, faces: np.ndarray, nodes: list[SkinNode]) -> tuple[tuple[str, ...], np.ndarray]:
    n = len(v)
    jaw = _jaw_weight(v)
    lids = {
        "eyelid_right": (topo.RIGHT_EYE_UPPER[1:-1], topo.RIGHT_LID_CREASE),
        "eyelid_left": (topo.LEFT_EYE_UPPER[1:-1], topo.LEFT_LID_CREASE),
    }
    eye_line = v[list(topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER), 1].mean()
    brow_rows = _rows_from_eyes(faces, n)
    cols: dict[str, np.ndarray] = {}
    for name, (margin, crease) in lids.items():
        w = np.zeros(n)
        w[list(margin)] = 1.0
        w[list(crease)] = 0.45
        cols[name] = w
    for node in nodes:
        d2 = ((v - node.rest) ** 2).sum(axis=1)
        g = np.exp(-d2 / (2 * node.sigma**2))
        g[g < 0.02] = 0.0
        if node.landmark in LOWER_LIP:
            g *= jaw  # a lower-lip point never drags the upper lip
        elif node.landmark in UPPER_LIP:
            g *= 1.0 - jaw
        elif node.landmark in BROWS:
            # Brow skin reaches down to the upper lid's fold, never below the eye: a lowered brow hoods the
            # eye, it does not pull the lower lid open. The fold is cut along a mesh row rather than a
            # height, so its edge is a chain of mesh edges: a cut across rows left a toothed edge that
            # read as a tear along the brows (docs/face.md, "The brow fold").
            g *= (brow_rows >= BROW_FOLD_ROW) * _smoothstep((v[:, 1] - eye_line) / (BROW_FLOOR_CM * CM) + 0.5)
        cols[node.name] = g
    local = np.stack(list(cols.values()), axis=1)
    # A lid margin belongs to its lid: nearby brow points must not hold it open.
    lid_share = local[:, :2].sum(axis=1, keepdims=True)
    local[:, 2:] *= np.clip(1.0 - lid_share, 0.0, 1.0)
    total = local.sum(axis=1, keepdims=True)
    local = np.where(total > 1.0, local / np.maximum(total, 1e-12), local)
    rest = 1.0 - local.sum(axis=1)
    weights = np.concatenate([(rest * (1 - jaw))[:, None], (rest * jaw)[:, None], local], axis=1)
    return ("head", "jaw", *cols.keys()), weights
