"""Browser tests: the real server (uvicorn, own process) and the system Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

# A live edit that changes the architecture compiles new code first (seconds on a busy 2-core machine).
expect.set_options(timeout=30_000)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _chromium() -> str | None:
    """Debian's chromium (Playwright cannot download its own browser here)."""
    for candidate in (os.environ.get("NEUROGLASS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn in its own process, on a free port; yields its base URL."""
    vendor = ROOT / "static" / "vendor" / "htmx.min.js"
    assert vendor.exists(), "static/vendor/ is missing: run `make install` (npm ci copies the page's packages there)"
    port = _free_port()
    tmp = tmp_path_factory.mktemp("server")
    env = {
        **os.environ,
        "NEUROGLASS_COMPILE_CACHE_DIR": str(tmp / "jax-cache"),
        "NEUROGLASS_MAX_SESSIONS": "1000",
        "NEUROGLASS_MAX_SESSIONS_PER_CLIENT": "1000",  # the browser is one client: its tests must not evict
        "NEUROGLASS_SESSION_IDLE_SECONDS": "3600",
        "NEUROGLASS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'neuroglass.sqlite'}",
    }
    log = (tmp / "server.log").open("w")
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app", "--host", "127.0.0.1"]
    proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def base_url(server: str) -> str:
    return server


@pytest.fixture(scope="module")
def chromium(server: str) -> Iterator[Browser]:
    """Debian's Chromium under Playwright, for one module: Playwright's sync API keeps an event loop running in
    this thread while it is started, which later asyncio.run() calls elsewhere in the suite would trip on."""
    executable = _chromium()
    if executable is None:
        message = "no Chromium: install Debian's package `chromium` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a missing browser is a broken set-up, not a reason to skip the page
        pytest.skip(message)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        # The tests' own probes (wait_for_function's string predicates) are evaluated in the page, which its
        # Content-Security-Policy forbids: contexts bypass the policy unless a test asks otherwise
        # (tests/e2e/test_csp.py runs the pages under it).
        new_context, new_page = browser.new_context, browser.new_page

        def bypassing(**kwargs: Any) -> BrowserContext:
            return new_context(**{"bypass_csp": True, **kwargs})

        def bypassing_page(**kwargs: Any) -> Page:
            return new_page(**{"bypass_csp": True, **kwargs})

        browser.new_context = bypassing  # type: ignore[method-assign]
        browser.new_page = bypassing_page  # type: ignore[method-assign]
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser context (its own cookies: a new visitor) at desktop size; page.goto("/") works."""
    context = chromium.new_context(base_url=base_url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
