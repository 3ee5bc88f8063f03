"""`/docs` and `/redoc` render with no network beyond loopback: headless Chromium (Debian's package)
loads each page from the session gateway, with every other host unresolvable, and the rendered DOM
shows the API's operations; the screenshot is not blank."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.services import IN_CI

pytestmark = pytest.mark.integration

#: Every host but loopback fails to resolve: a page that needs a CDN renders nothing.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + ": CI requires it")
        pytest.skip(message)
    return found


def browse(url: str, *args: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            OFFLINE,
            "--virtual-time-budget=15000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize(
    ("page", "rendered"),
    [
        (
            "/docs",
            re.compile(r'class="opblock-summary-path"[^>]*>.*?/connectors/\{service_name\}/execute', re.S),
        ),
        ("/redoc", re.compile(r"/connectors/\{service_name\}/execute")),
    ],
)
def test_the_docs_page_renders_offline(
    gateway_url: str, page: str, rendered: re.Pattern[str], tmp_path: Path
) -> None:
    served = httpx.get(gateway_url + page, timeout=30)
    assert served.status_code == 200
    html = served.text
    # every asset is this origin's: no scheme-qualified URL in a src or href
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), html
    policy = served.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy

    dom = browse(gateway_url + page, "--dump-dom", tmp_path=tmp_path)
    assert rendered.search(dom), dom[-3000:]
    assert dom.count("/connectors/{service_name}") >= 5  # many operations, not one line of text

    shot = tmp_path / "page.png"
    browse(gateway_url + page, f"--screenshot={shot}", "--window-size=1280,1600", tmp_path=tmp_path)
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the screenshot is blank"
