"""The Swagger page renders in a real browser, offline, and lists the critique operation.

Headless Chromium (Debian's `chromium` package) loads /swagger from `coach serve` with every host but
the loopback one unresolvable, runs the page's JavaScript and dumps the resulting DOM: the operation
rows exist only if the bundled Swagger UI rendered the published document without fetching anything.
"""

from __future__ import annotations

import subprocess
import tempfile

import pytest

from tests.api.api_support import http_call
from tests.support.chromium import chromium_or_skip


def render(browser: str, url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="coach-chromium-") as profile:
        completed = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}",
             # Any request to another host fails: the page must not need the internet.
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--virtual-time-budget=15000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.browser
def test_the_swagger_page_lists_the_critique_operation(offline_api):
    browser = chromium_or_skip()
    served = http_call(offline_api, "GET", "/swagger").text
    assert 'data-path="/critiques"' not in served  # so the rows below were built by the page's JavaScript

    dom = render(browser, f"{offline_api}/swagger")

    assert 'data-path="/critiques"' in dom, dom[-2000:]
    assert "Critique a story" in dom
    assert 'data-path="/health"' in dom
    assert "opblock-post" in dom
