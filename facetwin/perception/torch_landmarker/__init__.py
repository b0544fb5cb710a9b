"""MediaPipe's Face Landmarker in torch: the bundle's three networks executed op by op, batched, on CPU or CUDA.

Modules, one job each: ``tflite_graph`` (a .tflite graph as a torch module), ``constants`` (MediaPipe's
settings, with their sources), ``crops`` (the rotated crops), ``warp`` (sampling them from uint8
frames), ``detector``, ``landmarks``, ``landmarker`` (the pipeline). Exports load lazily, so importing
``facetwin.blendshape_torch`` (which uses the executor) does not pull in the whole pipeline.
"""

from __future__ import annotations

__all__ = ["LandmarkerResult", "TorchFaceLandmarker"]


def __getattr__(name: str):
    if name in __all__:
        from facetwin.perception.torch_landmarker import landmarker

        return getattr(landmarker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
