"""MJCF for the face twin, generated from the face spec and the anatomy in `face_geometry`.

Only MJX-friendly elements are used (hinge/slide joints, spatial tendons through sites, position
actuators); the skin mesh is a render-only `<skin>` bound to the bodies, so physics never sees it.
"""

from __future__ import annotations

import numpy as np

from facetwin.spec import FaceSpec
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

TIMESTEP = 0.002
CAMERA_DISTANCE = 0.55
CAMERA_FOVY = 30.0
SKIN_TEXTURE = "skin.png"

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


def _f(values) -> str:
    return " ".join(f"{x:.6g}" for x in np.ravel(values))


def _skin_damping() -> float:
    # Critically damped with its cables slack (the slowest case); under a taut cable it rings briefly.
    return 2.0 * np.sqrt(SKIN_STIFFNESS * SKIN_NODE_MASS)


def tendon_rest_length(points: list[np.ndarray]) -> float:
    return float(sum(np.linalg.norm(b - a) for a, b in zip(points[:-1], points[1:])))


def build_mjcf(spec: FaceSpec, geo: FaceGeometry) -> str:
    servo_by_name = {s.name: s for s in spec.servos}
    joints: dict[str, list[str]] = {"head": [], "jaw": []}

    def servo_joint(name: str, pos, axis) -> str:
        s = servo_by_name[name]
        kp, armature, damping, _ = SERVO_LOOPS[s.mechanism]
        lo, hi = np.radians(s.range_deg)
        return (
            f'<joint name="{name}" type="hinge" pos="{_f(pos)}" axis="{_f(axis)}" range="{lo:.6g} {hi:.6g}" '
            f'armature="{armature}" damping="{damping}" limited="true"/>'
        )

    def by_mechanism(mech: str):
        return [s for s in spec.servos if s.mechanism == mech]

    body_children: dict[str, list[str]] = {"head": [], "jaw": []}
    # --- eyes and lids ----------------------------------------------------------------------
    for side, iris in (("right", RIGHT_IRIS), ("left", LEFT_IRIS)):
        c = geo.eye_centers[side]
        eye_joints = "".join(
            servo_joint(s.name, [0, 0, 0], s.axis) for s in by_mechanism("eyeball") if f"_{side}_" in f"_{s.name}_"
        )
        sites = "".join(
            f'<site name="iris_{lm}" pos="{_f(p)}" size="0.0008"/>' for lm, p in zip(iris, geo.iris_local)
        )
        body_children["head"].append(
            f'<body name="eye_{side}" pos="{_f(c)}">'
            f'<inertial pos="0 0 0" mass="0.008" diaginertia="5e-7 5e-7 5e-7"/>{eye_joints}'
            f'<geom type="sphere" size="{EYE_RADIUS}" material="sclera"/>'
            f'<geom type="ellipsoid" size="{IRIS_RADIUS} {IRIS_RADIUS} {0.12 * EYE_RADIUS}" '
            f'pos="0 0 {0.9 * EYE_RADIUS}" material="iris"/>'
            f'<geom type="ellipsoid" size="{0.45 * IRIS_RADIUS} {0.45 * IRIS_RADIUS} {0.1 * EYE_RADIUS}" '
            f'pos="0 0 {0.94 * EYE_RADIUS}" material="pupil"/>{sites}</body>'
        )
        lid = next(s for s in by_mechanism("eyelid") if s.name.endswith(side))
        body_children["head"].append(
            f'<body name="{lid.name}" pos="{_f(c)}">'
            f'<inertial pos="0 0 0" mass="0.004" diaginertia="3e-7 3e-7 3e-7"/>{servo_joint(lid.name, [0, 0, 0], lid.axis)}</body>'
        )

    # --- jaw ------------------------------------------------------------------------------
    jaw_joints = "".join(servo_joint(s.name, JAW_PIVOT, s.axis) for s in by_mechanism("jaw"))
    body_children["head"].append(
        f'<geom name="mouth_cavity_upper" type="ellipsoid" size="{2.4 * SCALE} {0.9 * SCALE} {1.2 * SCALE}" '
        f'pos="0 {-3.9 * SCALE:.6g} {3.6 * SCALE:.6g}" material="mouth"/>'
    )
    body_children["jaw"].append(
        f'<geom name="mouth_cavity_lower" type="ellipsoid" size="{2.4 * SCALE} {1.2 * SCALE} {1.2 * SCALE}" '
        f'pos="0 {-5.0 * SCALE:.6g} {3.5 * SCALE:.6g}" material="mouth"/>'
    )

    # --- skin points ----------------------------------------------------------------------
    damping = _skin_damping()
    for n in geo.nodes:
        slides = "".join(
            f'<joint name="{n.name}_{ax}" type="slide" axis="{_f(np.eye(3)[i])}" stiffness="{SKIN_STIFFNESS}" '
            f'damping="{damping:.6g}"/>'
            for i, ax in enumerate("xyz")
        )
        body_children[n.parent].append(
            f'<body name="{n.name}" pos="{_f(n.rest)}">'
            f'<inertial pos="0 0 0" mass="{SKIN_NODE_MASS}" diaginertia="1e-6 1e-6 1e-6"/>{slides}'
            f'<site name="{n.name}" size="0.001"/></body>'
        )
        if n.tied_to_jaw:
            anchor = n.rest + np.array([0.0, -1.2, -0.4]) * SCALE
            body_children["jaw"].append(f'<site name="{n.name}_tie" pos="{_f(anchor)}" size="0.001"/>')

    # --- horns, pulleys, guides -----------------------------------------------------------
    for h in geo.horns:
        tips = "".join(
            f'<site name="{c.name}_tip" pos="{_f(c.tip - h.pivot)}" size="0.001"/>' for c in geo.cables if c.servo == h.servo
        )
        body_children[h.parent].append(
            f'<body name="horn_{h.servo}" pos="{_f(h.pivot)}">'
            f'<inertial pos="0 0 0" mass="0.002" diaginertia="1e-7 1e-7 1e-7"/>'
            f"{servo_joint(h.servo, [0, 0, 0], h.axis)}{tips}</body>"
        )
    for c in geo.cables:
        body_children[c.parent].append(
            f'<site name="{c.name}_pulley" pos="{_f(c.pulley)}" size="0.001"/>'
            f'<site name="{c.name}_guide" pos="{_f(c.guide)}" size="0.001"/>'
        )

    node_rest = {n.name: n.rest for n in geo.nodes}
    tendons = []
    for c in geo.cables:
        length = tendon_rest_length([c.tip, c.pulley, c.guide, node_rest[c.node]])
        # Deadband [0, L0]: a cable pulls when stretched and goes slack instead of pushing.
        tendons.append(
            f'<spatial name="{c.name}" stiffness="{CABLE_STIFFNESS}" springlength="0 {length:.7g}" width="0.0006">'
            f'<site site="{c.name}_tip"/><site site="{c.name}_pulley"/><site site="{c.name}_guide"/>'
            f'<site site="{c.node}"/></spatial>'
        )
    for n in geo.nodes:
        if n.tied_to_jaw:
            anchor = n.rest + np.array([0.0, -1.2, -0.4]) * SCALE
            length = float(np.linalg.norm(anchor - n.rest))
            tendons.append(
                f'<spatial name="{n.name}_tie" stiffness="{TIE_STIFFNESS}" springlength="0 {length:.7g}" width="0.0006">'
                f'<site site="{n.name}_tie"/><site site="{n.name}"/></spatial>'
            )

    actuators = []
    for s in spec.servos:
        kp, _, _, force = SERVO_LOOPS[s.mechanism]
        lo, hi = np.radians(s.range_deg)
        actuators.append(
            f'<position name="{s.name}" joint="{s.name}" kp="{kp}" ctrlrange="{lo:.6g} {hi:.6g}" '
            f'forcerange="{-force} {force}" forcelimited="true"/>'
        )

    neck_joints = "".join(servo_joint(s.name, NECK_PIVOT, s.axis) for s in by_mechanism("neck"))
    skin = _skin_xml(geo)
    return f"""<mujoco model="facetwin-{spec.name}">
  <compiler angle="radian"/>
  <!-- Gravity off: the silicone's weight is carried by its anchors, so the neutral face is the canonical one. -->
  <option timestep="{TIMESTEP}" integrator="implicitfast" gravity="0 0 0">
    <flag contact="disable"/>
  </option>
  <visual>
    <global offwidth="1024" offheight="1024" fovy="{CAMERA_FOVY}"/>
    <!-- No MSAA or shadow maps: on llvmpipe they cost 3-4x the frame time and MediaPipe reads the face as well. -->
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.38 0.38 0.38" diffuse="0.45 0.45 0.45" specular="0.05 0.05 0.05"/>
    <map znear="0.01" zfar="5"/>
  </visual>
  <default>
    <!-- Cables and ties are inside the head: physics sees them, the camera does not. -->
    <tendon rgba="0 0 0 0"/>
    <site rgba="0 0 0 0"/>
  </default>
  <asset>
    <texture name="skin" type="2d" file="{SKIN_TEXTURE}"/>
    <material name="skin" texture="skin" specular="0.12" shininess="0.25"/>
    <material name="scalp" rgba="0.23 0.16 0.11 1" specular="0.1"/>
    <material name="head" rgba="0.80 0.62 0.52 1" specular="0.1"/>
    <material name="sclera" rgba="0.93 0.91 0.88 1" specular="0.3" shininess="0.6"/>
    <material name="iris" rgba="0.30 0.19 0.11 1" specular="0.3"/>
    <material name="pupil" rgba="0.02 0.02 0.02 1" specular="0.5"/>
    <material name="mouth" rgba="0.28 0.07 0.07 1"/>
    <material name="backdrop" rgba="0.62 0.66 0.70 1"/>
  </asset>
  <worldbody>
    <light name="key" pos="0 0.35 0.8" dir="0 -0.4 -1" directional="true" diffuse="0.45 0.45 0.45" castshadow="false"/>
    <camera name="front" pos="0 0 {CAMERA_DISTANCE}" fovy="{CAMERA_FOVY}"/>
    <geom name="backdrop" type="plane" size="1 1 0.01" pos="0 0 -0.4" material="backdrop"/>
    <body name="head">
      <inertial pos="0 0.005 -0.04" mass="1.6" diaginertia="0.008 0.007 0.006"/>
      {neck_joints}
      <geom name="skull" type="ellipsoid" size="{7.3 * SCALE:.6g} {9.6 * SCALE:.6g} {8.6 * SCALE:.6g}" pos="0 {0.8 * SCALE:.6g} {-4.6 * SCALE:.6g}" material="head"/>
      <geom name="hair" type="ellipsoid" size="{7.9 * SCALE:.6g} {7.0 * SCALE:.6g} {8.9 * SCALE:.6g}" pos="0 {3.4 * SCALE:.6g} {-5.4 * SCALE:.6g}" material="scalp"/>
      <geom name="neck" type="capsule" size="{5.0 * SCALE:.6g} {5.0 * SCALE:.6g}" pos="0 {-12.0 * SCALE:.6g} {-5.0 * SCALE:.6g}" euler="1.5708 0 0" material="head"/>
      {"".join(body_children["head"])}
      <body name="jaw">
        <inertial pos="0 -0.06 0.02" mass="0.25" diaginertia="4e-4 4e-4 4e-4"/>
        {jaw_joints}
        {"".join(body_children["jaw"])}
      </body>
    </body>
  </worldbody>
  <deformable>
{skin}
  </deformable>
  <tendon>
    {chr(10).join(tendons)}
  </tendon>
  <actuator>
    {chr(10).join(actuators)}
  </actuator>
</mujoco>
"""


def bone_bind_positions(geo: FaceGeometry) -> dict[str, np.ndarray]:
    """World position of each skinning bone's body at the neutral pose (head at the origin)."""
    pos = {"head": np.zeros(3), "jaw": np.zeros(3)}
    pos["eyelid_right"] = geo.eye_centers["right"]
    pos["eyelid_left"] = geo.eye_centers["left"]
    for n in geo.nodes:
        pos[n.name] = n.rest
    return pos


def _skin_xml(geo: FaceGeometry) -> str:
    bind = bone_bind_positions(geo)
    uv = geo.uvs  # MuJoCo's skin texcoords, like MediaPipe's UVs, have v pointing down the image
    bones = []
    for j, name in enumerate(geo.bones):
        ids = np.flatnonzero(geo.weights[:, j] > 1e-6)
        if len(ids) == 0:
            continue
        bones.append(
            f'    <bone body="{name}" bindpos="{_f(bind[name])}" bindquat="1 0 0 0" '
            f'vertid="{" ".join(map(str, ids))}" vertweight="{_f(geo.weights[ids, j])}"/>'
        )
    return (
        f'  <skin name="face" material="skin" vertex="{_f(geo.vertices)}" texcoord="{_f(uv)}" '
        f'face="{" ".join(map(str, geo.faces.ravel()))}">\n' + "\n".join(bones) + "\n  </skin>"
    )
