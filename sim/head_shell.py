"""The back of the head: a shell stitched to the face mask's border, so the twin is a head, not a mask.

The canonical face is a mask open at the sides and the top. The shell starts on the mask's outer border
(the same vertices, so the seam cannot open), sweeps each border vertex back over an ellipsoidal skull
to one point at the back of the head, and carries the border's skinning weights, fading to the head's
own over its first rings: the jaw and the skin points move the seam exactly as they move the mask, and
the rest of the shell rides on the head. Its upper part is scalp, the rest skin; the ears and the neck
are geoms on the head body (`facetwin.sim.mjcf`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

# The skull the shell lies on, in canonical centimetres (before scaling): centre and radii.
SKULL_CENTRE = np.array([0.0, 1.0, -4.5])
SKULL_RADII = np.array([8.0, 10.5, 10.0])
RINGS = 16
SEAM_RINGS = 5  # rings over which the border's skinning weights fade to the head's
HAIR_FROM_CM = 2.2  # above this height the shell is scalp ...
HAIR_NAPE_CM = -3.0  # ... and, behind the ears, down to the nape


@dataclass(frozen=True)
class HeadShell:
    vertices: np.ndarray  # (S, 3) head frame, m; the first len(border) are the mask's border vertices
    border: np.ndarray  # (B,) mask vertex index of each of the first B shell vertices, in loop order
    faces: dict  # material name -> (F, 3) indices into `vertices`, wound outwards
    weights: np.ndarray  # (S, n_bones) skinning weights, the mask's bone columns


def outer_border(faces: np.ndarray, openings: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """The mask's outer border as one closed loop of vertex indices (edges used by one triangle only)."""
    count = Counter(tuple(sorted(e)) for f in faces for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])))
    inner = [set(ring) for ring in openings]
    edges = [e for e, n in count.items() if n == 1 and not any(e[0] in r and e[1] in r for r in inner)]
    nxt: dict[int, list[int]] = {}
    for a, b in edges:
        nxt.setdefault(a, []).append(b)
        nxt.setdefault(b, []).append(a)
    if any(len(v) != 2 for v in nxt.values()):
        raise ValueError("the face mask's outer border is not one simple loop")
    start = min(nxt)
    loop, prev = [start], None
    while True:
        cand = [v for v in nxt[loop[-1]] if v != prev]
        prev, here = loop[-1], cand[0]
        if here == start:
            break
        loop.append(here)
    if len(loop) != len(nxt):
        raise ValueError("the face mask's outer border is not one simple loop")
    return np.array(loop)


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = np.arccos(np.clip(a @ b, -1.0, 1.0))
    if omega < 1e-6:
        return a
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def build_shell(vertices: np.ndarray, faces: np.ndarray, openings, weights: np.ndarray, scale: float) -> HeadShell:
    """The shell for a mask of `vertices` (m, head frame) whose rest skinning `weights` are given."""
    border = outer_border(faces, openings)
    centre, radii = SKULL_CENTRE * scale, SKULL_RADII * scale
    back = np.array([0.0, 0.0, -1.0])
    rows, ring_of = [], []
    for k in range(RINGS):
        t = k / RINGS
        blend = 1.0 - (1.0 - t) ** 2  # the shell leaves the mask along it, then settles on the skull
        for i in border:
            u = (vertices[i] - centre) / radii
            r, d = np.linalg.norm(u), u / np.linalg.norm(u)
            rows.append(centre + radii * _slerp(d, back, t) * (r + (1.0 - r) * blend))
        ring_of.append(k)
    rows.append(centre + radii * back)  # the back of the head, where every sweep ends
    verts = np.array(rows)
    verts[: len(border)] = vertices[border]  # the seam is the mask's own border
    n_b, pole = len(border), len(verts) - 1

    tris = []
    for k in range(RINGS - 1):
        for j in range(n_b):
            a, b = k * n_b + j, k * n_b + (j + 1) % n_b
            tris += [(a, b, b + n_b), (a, b + n_b, a + n_b)]
    last = (RINGS - 1) * n_b
    tris += [(last + j, last + (j + 1) % n_b, pole) for j in range(n_b)]
    tris = np.array(tris)
    # Wind every triangle outwards from the skull's centre (the renderer culls the inner side).
    normals = np.cross(verts[tris[:, 1]] - verts[tris[:, 0]], verts[tris[:, 2]] - verts[tris[:, 0]])
    inward = (normals * (verts[tris].mean(axis=1) - centre)).sum(axis=1) < 0
    tris[inward] = tris[inward][:, ::-1]

    centroid = verts[tris].mean(axis=1) / scale
    hair = (centroid[:, 1] > HAIR_FROM_CM) | ((centroid[:, 2] < SKULL_CENTRE[2] - 2.0) & (centroid[:, 1] > HAIR_NAPE_CM))

    head_col = np.zeros(weights.shape[1])
    head_col[0] = 1.0
    w = np.empty((len(verts), weights.shape[1]))
    for k in range(RINGS):
        fade = min(1.0, k / SEAM_RINGS)
        w[k * n_b : (k + 1) * n_b] = (1 - fade) * weights[border] + fade * head_col
    w[pole] = head_col
    return HeadShell(verts, border, {"scalp": tris[hair], "head": tris[~hair]}, w)
