"""Finding MediaPipe's landmarker bundle, and what happens when it is missing or wrong."""

import hashlib

import numpy as np
import pytest

from facetwin import landmarker_bundle as lb


def test_the_shared_bundle_is_the_pinned_release(shared_dir):
    assert lb.sha256_of(shared_dir / "models" / "face_landmarker.task") == lb.SHA256


def test_env_var_pointing_nowhere_says_how_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.setenv(lb.ENV_VAR, str(tmp_path / "missing.task"))
    with pytest.raises(lb.LandmarkerModelError, match="does not exist.*FACETWIN_FACE_LANDMARKER"):
        lb.resolve()


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path):
    junk = tmp_path / "face_landmarker.task"
    junk.write_bytes(b"not a zip")
    with pytest.raises(lb.LandmarkerModelError, match="not a MediaPipe .task bundle"):
        lb.resolve(junk)


def test_no_file_and_no_network_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(lb.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(lb.urllib.request, "urlopen", offline)
    with pytest.raises(lb.LandmarkerModelError, match="downloading it failed.*--landmarker"):
        lb.resolve()


def test_a_download_with_the_wrong_checksum_is_discarded(monkeypatch, tmp_path):
    import io

    monkeypatch.setattr(lb.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"tampered"))
    dest = tmp_path / "face_landmarker.task"
    with pytest.raises(lb.LandmarkerModelError, match="sha256"):
        lb.download(dest)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_a_download_is_cached_and_reused(monkeypatch, tmp_path, shared_dir):
    import io

    payload = (shared_dir / "models" / "face_landmarker.task").read_bytes()
    calls = []
    monkeypatch.delenv(lb.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(lb.urllib.request, "urlopen", lambda *a, **k: calls.append(1) or io.BytesIO(payload))
    first = lb.resolve()
    second = lb.resolve()
    assert first == second == tmp_path / "facetwin" / "face_landmarker.task"
    assert len(calls) == 1 and hashlib.sha256(first.read_bytes()).hexdigest() == lb.SHA256


def test_canonical_mesh_is_468_landmark_ordered_vertices():
    mesh = lb.canonical_mesh(lb.resolve())
    assert mesh.vertices.shape == (468, 3) and mesh.faces.shape == (898, 3)
    np.testing.assert_allclose(mesh.vertices[0], [0, -3.4064, 5.9795], atol=1e-3)
    assert mesh.uvs.min() >= 0 and mesh.uvs.max() <= 1
