"""`facetwin render` and `facetwin texture` from the command line, good input and bad."""

import cv2
import numpy as np
import pytest

from facetwin.app.cli import main


def test_render_a_named_pose(tmp_path):
    out = tmp_path / "smile.png"
    assert main(["render", "--pose", "smile", "--size", "128", "--out", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (128, 128, 3)


def test_render_a_command_vector(tmp_path):
    out = tmp_path / "a.png"
    action = ",".join(["0"] * 20 + ["0.5", "0", "0", "0", "0"])
    assert main(["render", "--action", action, "--size", "96", "--out", str(out)]) == 0
    assert out.is_file()


@pytest.mark.parametrize(
    "action, message",
    [("0,0,0", "expected 25 servo commands"), (",".join(["nan"] * 25), "NaN"), (",".join(["3"] * 25), "out of range"), ("a,b", "numbers")],
)
def test_bad_actions_are_one_line_errors(tmp_path, capsys, action, message):
    assert main(["render", "--action", action, "--out", str(tmp_path / "x.png")]) == 2
    assert message in capsys.readouterr().err


def test_unknown_pose_lists_the_known_ones(tmp_path, capsys):
    assert main(["render", "--pose", "grin", "--out", str(tmp_path / "x.png")]) == 2
    assert "smile" in capsys.readouterr().err


def test_a_face_photo_becomes_the_skin(tmp_path, faces_dir):
    out = tmp_path / "skin.png"
    preview = tmp_path / "preview.png"
    assert main(["texture", str(faces_dir / "images" / "max_neutral.jpg"), "--out", str(out), "--preview", str(preview)]) == 0
    uvs = np.load(out.with_suffix(".uv.npy"))
    assert uvs.shape == (468, 2) and 0 <= uvs.min() and uvs.max() <= 1
    assert main(["render", "--pose", "smile", "--texture", str(out), "--size", "128", "--out", str(tmp_path / "s.png")]) == 0


def test_unreadable_texture_photo_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "face.jpg"
    bad.write_bytes(b"\x00garbage")
    assert main(["texture", str(bad), "--out", str(tmp_path / "skin.png")]) == 2
    assert "face.jpg" in capsys.readouterr().err


def test_a_photo_without_a_face_is_a_clear_error(tmp_path, capsys):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    assert main(["texture", str(blank), "--out", str(tmp_path / "skin.png")]) == 2
    assert "no face found" in capsys.readouterr().err
