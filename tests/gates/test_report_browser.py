"""The report's HTML page in a real headless browser (Debian's chromium).

Checks that the page loads with no console message (the page has no script, so any console line is a
problem: a failed load, a blocked resource), shows the verdict, that every image decodes, and that a
screenshot's top banner has the verdict's colour. Negative controls prove the console and image checks
catch what they look for.

Chromium in headless mode with `--enable-logging=stderr --v=0` writes each console message to stderr
as `[pid:tid:date:INFO:CONSOLE:LINE] "message", source: URL (LINE)` (older builds: `CONSOLE(LINE)`).
Skipped with a reason when `chromium` is not on PATH, unless ANDON_REQUIRE_CHROMIUM=1 (CI), where a
missing browser fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colors
from matplotlib import image as mpimg

from andon.gates.records import GateResult
from andon.gates.render_html import VERDICT_COLOURS
from andon.gates.report_store import write_report
from tests.gates.report_samples import kmpd_gate, map_gate, sample_report

CHROMIUM = shutil.which("chromium")
REQUIRED = os.environ.get("ANDON_REQUIRE_CHROMIUM") == "1"
TIMEOUT_S = 60
WINDOW = (1280, 2000)  # [px] width, height
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught")
# Appended to a test-only copy of the page: writes each image's load state and natural size into the DOM.
IMAGE_PROBE = """<script>window.addEventListener("load", () => {
  const out = document.createElement("pre"); out.id = "image-probe";
  out.textContent = JSON.stringify(Array.from(document.images, i => [i.complete, i.naturalWidth, i.naturalHeight]));
  document.body.appendChild(out); });</script>"""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRED,
    reason="Debian's chromium is not on PATH (apt-get install chromium; .ci/run installs it): the report page's "
           "browser tests need a real headless browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        pytest.fail("ANDON_REQUIRE_CHROMIUM=1 but chromium is not on PATH: install Debian's chromium")
    return CHROMIUM


def run_chromium(chromium: str, profile: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless chromium on a local page with console logging on stderr; fail on a non-zero exit."""
    command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
               f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", *args, page.as_uri()]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc


def dump_dom(chromium: str, tmp_path: Path, page: Path) -> tuple[str, list[str]]:
    """The DOM after load, and the console lines chromium logged."""
    proc = run_chromium(chromium, tmp_path / "profile", page, "--virtual-time-budget=3000", "--dump-dom")
    return proc.stdout, [line for line in proc.stderr.splitlines() if CONSOLE_LINE.search(line)]


def image_probe(chromium: str, tmp_path: Path, page: Path) -> list[list[int | bool]]:
    """[complete, naturalWidth, naturalHeight] of every <img>, from a test-only copy with a probe script."""
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    dom, _ = dump_dom(chromium, tmp_path, probe)
    found = re.search(r'<pre id="image-probe">(.*?)</pre>', dom)
    assert found, "the image probe did not run"
    return json.loads(found.group(1))


def report_page(root: Path, gates: list[GateResult] | None = None) -> Path:
    """Two gates (one failing), a flip and a disengagement with pictures, written to the workspace."""
    return write_report(root, sample_report(root, gates=gates)).html_path


def test_the_page_loads_without_console_messages_and_shows_the_verdict(chromium, tmp_path):
    page = report_page(tmp_path)
    dom, console = dump_dom(chromium, tmp_path, page)
    assert console == []
    assert re.search(r'<header id="verdict" class="fail" data-verdict="fail">.*?<h1>FAIL</h1>', dom)
    assert 'id="gate-km_per_disengagement"' in dom and 'id="gate-detector_map"' in dom


def test_console_errors_are_caught(chromium, tmp_path):
    """Negative control: a page with a script error is reported by the console check."""
    broken = tmp_path / "broken.html"
    broken.write_text(report_page(tmp_path).read_text().replace("</body>", "<script>noSuchFunction();</script></body>"))
    _, console = dump_dom(chromium, tmp_path, broken)
    assert any("Uncaught ReferenceError: noSuchFunction is not defined" in line for line in console), console


def test_every_image_decodes(chromium, tmp_path):
    page = report_page(tmp_path)
    images = image_probe(chromium, tmp_path, page)
    assert len(images) == page.read_text().count("<img ") == 4  # two charts, a flip's and an event's picture
    assert all(complete and width > 0 and height > 0 for complete, width, height in images), images


def test_a_broken_image_is_caught(chromium, tmp_path):
    """Negative control: an image that does not decode has naturalWidth 0 in the probe."""
    page = tmp_path / "broken-image.html"
    page.write_text(report_page(tmp_path).read_text().replace(
        "</main>", '<img src="data:image/png;base64,AAAA" alt="broken"></main>'))
    assert [w for _, w, _ in image_probe(chromium, tmp_path, page)][-1] == 0


@pytest.mark.parametrize("verdict", ["fail", "pass", "insufficient"])
def test_screenshot_banner_has_the_verdict_colour(chromium, tmp_path, verdict):
    gates = {"fail": None,
             "pass": [kmpd_gate(outcome="pass", value=60.0, margin=10.0), map_gate()],
             "insufficient": [kmpd_gate(outcome="insufficient", needed={"km": 35.2}), map_gate()]}[verdict]
    page = report_page(tmp_path, gates)
    shot = tmp_path / f"report-{verdict}.png"
    run_chromium(chromium, tmp_path / "profile", page, "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                 f"--screenshot={shot}")
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    banner = pixels[:100, :, :3].reshape(-1, 3)
    dominant = np.median(banner, axis=0)
    expected = np.array(colors.to_rgb(VERDICT_COLOURS[verdict]))
    assert np.abs(dominant - expected).max() < 0.03, (dominant, expected)
    body = np.median(pixels[1900:, :, :3].reshape(-1, 3), axis=0)
    assert np.abs(body - 1.0).max() < 0.03  # the page below is white, not the banner colour
