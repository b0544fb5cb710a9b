"""`facetwin eval --report REPORT.html`: the evaluation as one static page to look at.

Per face: the person | the twin under the policy's command | the twin under the oracle's, and bars of the
blendshape error per face region (policy next to oracle). Pictures are embedded as JPEG data URIs, so the
page is a single file that opens anywhere, offline, without a server. No script: plain HTML and CSS.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin.dataset import atomic
from facetwin.perception.sources import IMAGE_SUFFIXES

JPEG_QUALITY = 85
ROLES = ("person", "twin", "oracle")  # the order tiles come in from the closed loop (sheet.SheetTile)

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table.summary td, table.summary th { padding: 2px 10px; text-align: left; }
section.face { border-top: 1px solid #ccc; padding: 1em 0; display: flex; gap: 2em; align-items: flex-start; }
section.face h2 { font-size: 15px; margin: 0 0 .5em 0; }
figure { margin: 0 8px 0 0; display: inline-block; text-align: center; }
figure img { width: 192px; height: 192px; display: block; }
.bars { min-width: 320px; }
.bar-row { display: grid; grid-template-columns: 70px 1fr 60px; gap: 6px; align-items: center; margin: 2px 0; }
.bar { height: 10px; }
.bar.policy { background: #d9534f; } .bar.oracle { background: #5b8def; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; }
"""


@dataclass
class FaceView:
    """One face's row of the page."""

    title: str
    images: dict[str, np.ndarray]  # role -> (H, W, 3) uint8 RGB
    captions: dict[str, str]
    per_region: dict[str, float]  # the policy's blendshape MAE per region
    oracle_per_region: dict[str, float] | None


def faces_from_report(report) -> list[FaceView]:
    """FaceViews of an `agents.evaluation.closed_loop.EvalReport` evaluated with keep_tiles."""
    views = []
    for i, r in enumerate(report.results):
        if not r.tiles:
            raise ValueError("the evaluation kept no pictures; run it with EvalConfig(keep_tiles=True)")
        roles = ROLES[: len(r.tiles)]
        views.append(FaceView(
            title=f"{i + 1}. {Path(r.path).name}" + ("" if Path(r.path).suffix.lower() in IMAGE_SUFFIXES else f" frame {r.index}"),
            images={role: t.image for role, t in zip(roles, r.tiles)},
            captions={role: t.caption for role, t in zip(roles, r.tiles)},
            per_region=dict(r.error.per_region),
            oracle_per_region=dict(r.oracle.error.per_region) if r.oracle is not None else None))
    return views


def data_uri(rgb: np.ndarray) -> str:
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} picture as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


def _caption(role: str, caption: str) -> str:
    """The twins' tiles carry their score; the person's carries only the file name, already the title."""
    return html.escape(role if role == "person" else f"{role}: {caption}")


def _bars(view: FaceView, scale: float) -> str:
    rows = []
    for region, value in view.per_region.items():
        pairs = [("policy", value)]
        if view.oracle_per_region is not None:
            pairs.append(("oracle", view.oracle_per_region[region]))
        for who, v in pairs:
            width = 100.0 * v / scale if scale > 0 else 0.0
            label = region if who == "policy" else ""
            rows.append(f'<div class="bar-row" data-region="{html.escape(region)}" data-who="{who}"><span>{html.escape(label)}</span>'
                        f'<div><div class="bar {who}" style="width:{width:.1f}%"></div></div><span>{v:.3f}</span></div>')
    return "\n".join(rows)


def _summary(data: dict) -> str:
    rows = [("policy", f"{data['policy']} ({data['policy_kind']})"), ("faces", f"{data['n_faces']} from {data['faces']}"),
            ("readout", data["readout"]), ("blendshape MAE", f"{data['blendshape_mae']:.4f}")]
    if data.get("oracle_blendshape_mae") is not None:
        rows += [("oracle MAE", f"{data['oracle_blendshape_mae']:.4f} ({data['oracle_budget']} evaluations/face)"),
                 ("ratio to oracle", f"{data['ratio_to_oracle']:.2f}")]
    rows.append(("per region", ", ".join(f"{k} {v:.3f}" for k, v in data["per_region"].items())))
    return "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)


def render_html(summary: dict, faces: list[FaceView]) -> str:
    """The page; ``summary`` is `EvalReport.to_dict()`."""
    values = [v for f in faces for v in f.per_region.values()]
    values += [v for f in faces if f.oracle_per_region for v in f.oracle_per_region.values()]
    scale = max(values, default=0.0)  # one scale for every bar on the page, so faces compare by eye
    sections = []
    for i, f in enumerate(faces):
        figures = "".join(
            f'<figure><img src="{data_uri(img)}" alt="{role} {html.escape(f.title)}" data-face="{i}" data-role="{role}">'
            f"<figcaption>{_caption(role, f.captions.get(role, ''))}</figcaption></figure>"
            for role, img in f.images.items())
        sections.append(f'<section class="face" id="face-{i}"><div><h2>{html.escape(f.title)}</h2>{figures}</div>'
                        f'<div class="bars"><h2>blendshape MAE per region</h2>{_bars(f, scale)}</div></section>')
    legend = '<p class="legend"><span class="bar policy"></span>policy<span class="bar oracle"></span>oracle</p>'
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>facetwin eval: '
            f'{html.escape(str(summary["policy"]))}</title><style>{STYLE}</style></head><body>\n'
            f'<h1>facetwin eval</h1>\n<table class="summary">{_summary(summary)}</table>\n{legend}\n'
            + "\n".join(sections) + "\n</body></html>\n")


def write_report(path: str | Path, report) -> Path:
    """Write the page for an EvalReport (evaluated with keep_tiles) atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, render_html(report.to_dict(), faces_from_report(report)))
    return path
