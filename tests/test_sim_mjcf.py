"""The twin's MJCF: a committed static scene that includes a face generated from the spec."""

import xml.etree.ElementTree as ET
from importlib import resources

import mujoco
import numpy as np

from facetwin.sim.mjcf import FACE_PART, SCENE, SKIN_TEXTURE
from facetwin.sim.twin import save_model


def test_the_committed_scene_includes_the_generated_face():
    scene = ET.fromstring((resources.files("facetwin.assets") / "xmls" / SCENE).read_text())
    assert [i.get("file") for i in scene.iter("include")] == [FACE_PART]
    assert [t.get("file") for t in scene.iter("texture")] == [SKIN_TEXTURE]
    # The scene is only the stage: no body, joint, cable or servo lives in it.
    assert all(scene.find(f".//{tag}") is None for tag in ("body", "joint", "spatial", "actuator"))


def test_the_face_part_carries_the_spec_and_the_scene_names_the_model_after_it(twin):
    face = ET.fromstring(twin.parts[FACE_PART])
    assert [p.get("name") for p in face.iter("position")] == list(twin.spec.names)
    assert ET.fromstring(twin.parts[SCENE]).get("model") == f"facetwin-{twin.spec.name}"


def test_the_compiled_model_has_the_spec_servos_as_actuators_in_order_with_their_ranges(twin):
    m = twin.model
    assert tuple(m.actuator(i).name for i in range(m.nu)) == twin.spec.names
    for i, s in enumerate(twin.spec.servos):
        np.testing.assert_allclose(np.degrees(m.actuator_ctrlrange[i]), s.range_deg, atol=1e-4)
        np.testing.assert_allclose(np.degrees(m.jnt_range[m.joint(s.name).id]), s.range_deg, atol=1e-4)


def _same_model(a: mujoco.MjModel, b: mujoco.MjModel) -> None:
    for name in ("body_pos", "body_quat", "jnt_range", "tendon_lengthspring", "actuator_gainprm", "geom_size", "skin_vert"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-9, err_msg=name)
    assert bytes(a.names) == bytes(b.names)


def test_a_saved_model_folder_loads_in_mujoco_as_the_same_model(twin, tmp_path):
    path = save_model(twin, tmp_path / "model")
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([SCENE, FACE_PART, SKIN_TEXTURE])
    _same_model(mujoco.MjModel.from_xml_path(str(path)), twin.model)


def test_the_standalone_document_loads_in_mujoco_as_the_same_model(twin, tmp_path):
    assert "<include" not in twin.xml
    (tmp_path / SKIN_TEXTURE).write_bytes(twin.texture.png_bytes())
    (tmp_path / "standalone.xml").write_text(twin.xml)
    _same_model(mujoco.MjModel.from_xml_path(str(tmp_path / "standalone.xml")), twin.model)
