"""`facetwin eval --report`: a static page with every face's person | twin | oracle pictures and per-region
bars, loaded in headless Chromium to check that every picture decodes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from facetwin.agents.evaluation.metrics import REGIONS
from facetwin.app.cli import main

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces" / "images"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

# The report itself has no script. This page loads it in a frame and writes, for every face picture, whether
# the browser decoded it, where --dump-dom prints it.
HARNESS = """<!doctype html><html><body><iframe id="r" src="{report}"></iframe><pre id="out">not loaded</pre>
<script>
document.getElementById('r').addEventListener('load', () => {{
  const doc = document.getElementById('r').contentDocument;
  const images = [...doc.querySelectorAll('img[data-face]')].map(i => ({{
    face: Number(i.dataset.face), role: i.dataset.role, width: i.naturalWidth, complete: i.complete}}));
  const bars = [...doc.querySelectorAll('section.face .bar-row')].map(b => [b.dataset.region, b.dataset.who]);
  document.getElementById('out').textContent = JSON.stringify({{images, bars, faces: doc.querySelectorAll('section.face').length}});
}});
</script></body></html>"""


def load_in_chromium(report: Path) -> dict:
    harness = report.parent / "harness.html"
    harness.write_text(HARNESS.format(report=report.name))
    # root in a container needs --no-sandbox; file pages may read their neighbours only with the flag below
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--virtual-time-budget=10000", "--dump-dom", harness.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    start = dom.index('<pre id="out">') + len('<pre id="out">')
    return json.loads(dom[start:dom.index("</pre>", start)].replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (scripts/setup.sh installs it)")
@pytest.mark.skipif(not FACES.is_dir(), reason="needs ../shared/faces/images")
def test_every_face_of_the_report_shows_person_twin_and_oracle_in_a_browser(tmp_path):
    out, report = tmp_path / "eval.json", tmp_path / "eval.html"
    assert main(["eval", "--policy", "neutral", "--faces", str(FACES), "--max-faces", "3", "--oracle-budget", "12",
                 "--out", str(out), "--report", str(report)]) == 0
    n_faces = json.loads(out.read_text())["n_faces"]
    assert n_faces == 3
    page = load_in_chromium(report)
    assert page["faces"] == n_faces
    shown = {(i["face"], i["role"]) for i in page["images"] if i["complete"] and i["width"] > 0}
    assert shown == {(f, role) for f in range(n_faces) for role in ("person", "twin", "oracle")}
    assert sorted(page["bars"]) == sorted([r, who] for _ in range(n_faces) for r in REGIONS for who in ("policy", "oracle"))


def test_report_needs_an_html_path(tmp_path, capsys):
    assert main(["eval", "--policy", "neutral", "--faces", str(tmp_path), "--out", str(tmp_path / "e.json"),
                 "--report", str(tmp_path / "e.pdf")]) == 2
    assert "give a path ending in .html" in capsys.readouterr().err
