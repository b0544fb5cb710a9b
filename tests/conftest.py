"""Test-wide settings: headless EGL rendering and the landmarker bundle from ../shared."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BUNDLE = SHARED / "models" / "face_landmarker.task"
FACES = SHARED / "faces"

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
if BUNDLE.is_file():
    os.environ.setdefault("FACETWIN_FACE_LANDMARKER", str(BUNDLE))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return FACES


@pytest.fixture(scope="session")
def reads_like_mediapipe():
    """Checks a landmark engine's results against MediaPipe's IMAGE-mode reading of the same frames, to issue 24's
    target: every face found by both, landmarks within 1 px, coefficients within 0.003 MAE. Returns the agreement."""
    from facetwin.app.bench.landmarker import compare

    def check(reference, results):
        agreement = compare(reference, [r.expression() for r in results])
        assert agreement.found_mismatch == 0 and agreement.faces_both == len(reference)
        assert agreement.landmark_px_max <= 1.0
        assert agreement.coeff_mae_max <= 0.003
        return agreement

    return check


@pytest.fixture
def bundle_without(tmp_path):
    """A copy of the landmarker bundle with one member left out: bundle_without(name) -> its path."""
    import zipfile

    from facetwin import landmarker_bundle

    def write(missing: str) -> Path:
        broken = tmp_path / "partial.task"
        with zipfile.ZipFile(landmarker_bundle.resolve(None)) as src, zipfile.ZipFile(broken, "w") as dst:
            for name in src.namelist():
                if name != missing:
                    dst.writestr(name, src.read(name))
        return broken

    return write


@pytest.fixture(scope="session")
def twin():
    """One twin for the whole session: building one takes a few tenths of a second."""
    from facetwin.sim.twin import FaceTwin

    t = FaceTwin()
    yield t
    t.close()


@pytest.fixture(scope="module")
def torch_one_thread():
    """One CPU thread for training tests: on a shared machine, threads waiting on a busy core stall every op."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _BatchLog:
    """A real PixelReadout, noting the size of every batch it is asked to read."""

    def __init__(self, readout):
        self.readout, self.sizes = readout, []

    def read(self, poses):
        import numpy as np

        self.sizes.append(len(np.atleast_2d(poses)))
        return self.readout.read(poses)


@pytest.fixture
def logged_readout(twin):
    """The session twin's reference PixelReadout, with `.sizes`: the batch sizes it was asked to read."""
    return _BatchLog(twin.pixel_readout())
