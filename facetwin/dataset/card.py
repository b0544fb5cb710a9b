"""The dataset card (README.md at the dataset root), in the Hugging Face Hub's format."""

from __future__ import annotations

import json

from facetwin.dataset.layout import ACTION, DatasetInfo
from facetwin.dataset.stats import FeatureStats

FRONT_MATTER = """---
license: apache-2.0
task_categories:
- robotics
tags:
- LeRobot
- facetwin
- facial-expression
configs:
- config_name: default
  data_files: data/*/*.parquet
---
"""


def render_card(info: DatasetInfo, stats: dict[str, FeatureStats], description: str = "") -> str:
    rows = []
    for key, ft in info.features.items():
        rng = ""
        if key in stats and ft.dtype == "float32" and len(ft.shape) == 1:
            s = stats[key]
            rng = f"{s.min.min():.3g} .. {s.max.max():.3g}"
        names = "" if ft.names is None else ", ".join(ft.names[:4]) + (", ..." if len(ft.names) > 4 else "")
        rows.append(f"| `{key}` | {ft.dtype} | {list(ft.shape)} | {names} | {rng} |")
    servos = ", ".join(info.features[ACTION].names or ())
    return f"""{FRONT_MATTER}
# facetwin dataset: {info.spec_name}

{description or f"Servo commands of a simulated {len(info.servo_names)}-servo robot face and the facial expression they produce."}

- Face: `{info.face or info.spec_name}`; face spec `{info.spec_name}` v{info.spec_version}, fingerprint `{info.spec_fingerprint}`
- Readout: `{info.readout}` ({"a 512 px render read by MediaPipe's Face Landmarker" if info.readout == "pixels" else "the twin's own landmarks through the blendshape network"})
- Episodes: {info.total_episodes}, frames: {info.total_frames}, fps: {info.fps}
- Format: LeRobotDataset {info.codebase_version} (written by facetwin with pyarrow; readable by `lerobot`)

`action` and `observation.state` are normalised servo commands/positions in [-1, 1], in this order:
{servos}.
`observation.expression` is MediaPipe's 52 blendshape coefficients followed by head yaw, pitch and roll in
degrees. `observation.landmarks` (if present) are MediaPipe's 478 face landmarks in pixels.

| feature | dtype | shape | names | range |
|---|---|---|---|---|
{chr(10).join(rows)}

Check it with `facetwin dataset check <dir>`; load it with `from facetwin.dataset import load_arrays`.

## meta/info.json

```json
{json.dumps(info.to_json(), indent=2)}
```
"""
