"""Helpers for the browser tests: start/stop the app server, wait for Streamlit, screenshots."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "screenshots"
REQUIRE_BROWSER_ENV = "ASSOCLENS_REQUIRE_BROWSER"
SERVER_START_TIMEOUT_S = 90
# First visits compute on CPU (model load plus the default run); a 2-core machine shared with other work needs
# minutes, not seconds. Override with ASSOCLENS_E2E_TIMEOUT_S.
PAGE_TIMEOUT_MS = int(float(os.environ.get("ASSOCLENS_E2E_TIMEOUT_S", "300")) * 1000)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
PROBE_PAGES = ("induction", "steering", "poisoned", "spectra")
PAGE_PATHS = {"home": "", **{name: name for name in PROBE_PAGES}}


def browser_unavailable(reason: str) -> None:
    """Skip, or fail when the environment demands the browser tests run (CI)."""
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_BROWSER_ENV}=1, so the browser tests must run)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    url: str
    db_path: Path
    log_path: Path
    process: subprocess.Popen
    warm_up_s: float | None = None  # seconds the first visit took (model load included)

    def page_url(self, page: str) -> str:
        return f"{self.url}/{PAGE_PATHS.get(page, page)}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


def start_server(db_path: Path, log_path: Path, extra_env: dict[str, str] | None = None) -> AppServer:
    """`streamlit run app.py` on a free port, waiting for `/_stcore/health`."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        ASSOCLENS_DB=str(db_path),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"),
        PYTHONUNBUFFERED="1",
        ASSOCLENS_JOB_RUNNER="process",  # background jobs in worker processes, as for a user
    )
    env.update(extra_env or {})
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = open(log_path, "wb")  # noqa: SIM115 - kept open for the server's lifetime
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = AppServer(url=f"http://127.0.0.1:{port}", db_path=db_path, log_path=log_path, process=process)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not _healthy(server.url):
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{server.log_tail()}")
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"streamlit not healthy after {SERVER_START_TIMEOUT_S} s:\n{server.log_tail()}")
        time.sleep(0.25)
    return server


def stop_server(server: AppServer) -> None:
    """Stop the server we started (its own process group), politely first."""
    if server.process.poll() is not None:
        return
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    except ProcessLookupError:
        pass


# --- helpers shared by the browser tests ---------------------------------------------------------------------

APP = '[data-testid="stApp"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_BOX = '[data-testid="stAlertContentError"]'
WARNING_BOX = '[data-testid="stAlertContentWarning"]'
PLOTLY = ".js-plotly-plot"


def wait_idle(page, timeout_ms: int = PAGE_TIMEOUT_MS, rerun_grace_ms: int = 1500) -> None:
    """Wait until the app is connected and its script is not running.

    After an interaction the rerun may not have started yet, so first give it `rerun_grace_ms` to start.
    """
    page.wait_for_selector(f'{APP}[data-test-connection-state="CONNECTED"]', timeout=timeout_ms)
    if rerun_grace_ms:
        try:
            page.wait_for_selector(f'{APP}:not([data-test-script-state="notRunning"])', timeout=rerun_grace_ms)
        except Exception:  # noqa: BLE001 - the rerun already finished (or none was needed)
            pass
    page.wait_for_selector(f'{APP}[data-test-script-state="notRunning"]', timeout=timeout_ms)


def open_page(page, server: AppServer, name: str, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    page.goto(server.page_url(name), wait_until="domcontentloaded")
    wait_idle(page, timeout_ms)


def assert_no_exception(page, server: AppServer | None = None) -> None:
    boxes = page.locator(EXCEPTION)
    if boxes.count():
        detail = boxes.first.inner_text()
        log = f"\n--- server log ---\n{server.log_tail()}" if server else ""
        raise AssertionError(f"Streamlit exception box on the page: {detail}{log}")


def screenshot(page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its main container, so grow the viewport to its height first."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    size = page.viewport_size
    try:
        height = page.evaluate(
            '() => Math.max(...[...document.querySelectorAll(\'[data-testid="stMain"], [data-testid="stSidebar"]\')]'
            ".map(el => el.scrollHeight), 0)"
        )
        if size and height > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
            page.wait_for_timeout(300)  # let Plotly re-lay out
        page.screenshot(path=str(path), full_page=True)
    finally:
        if size:
            page.set_viewport_size(size)
    return path


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


PLACEHOLDER_MARKER = "placeholder until the probe lands"
PRIMARY_BUTTON = 'button[data-testid^="stBaseButton-primary"]'


def is_placeholder(page_name: str) -> bool:
    """True while pages/<name>.py is still the foundation's 'not built yet' stand-in."""
    return PLACEHOLDER_MARKER in (REPO_ROOT / "pages" / f"{page_name}.py").read_text()


FIGURE_FACTS_JS = """
element => {
  const layout = element.layout || {};
  const raw = t => (t && typeof t === 'object') ? (t.text || '') : (t || '');
  const text = t => String(raw(t)).replace(/<[^>]*>/g, '');  // Streamlit's theme wraps titles in <b>
  const data = element._fullData || element.data || [];  // _fullData: typed arrays decoded by plotly.js
  const points = data.reduce((total, trace) => {
    const values = trace.y || trace.z || trace.values || trace.x || trace.r || [];
    return total + (values.length || 0);
  }, 0);
  return {
    traces: data.length,
    points: points,
    title: text(layout.title),
    xaxis: text((layout.xaxis || {}).title),
    yaxis: text((layout.yaxis || {}).title),
  };
}
"""


def figure_facts(page, scope: str = '[data-testid="stMain"]') -> list[dict]:
    """Title, axis titles, trace and point counts of every Plotly figure drawn in `scope`."""
    figures = page.locator(f"{scope} {PLOTLY}")
    return [figures.nth(i).evaluate(FIGURE_FACTS_JS) for i in range(figures.count())]


def wait_for_figure(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> list[dict]:
    """Wait until at least one Plotly figure with data is drawn in the main area; return the figures' facts."""
    page.locator(f'[data-testid="stMain"] {PLOTLY}').first.wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
                 .some(el => (el.data || []).length > 0)""",
        timeout=timeout_ms,
    )
    return figure_facts(page)


def expect_text(locator, text: str, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Retrying check (Streamlit reruns land asynchronously): `locator` comes to contain `text`."""
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text, timeout=timeout_ms)


def expect_count(locator, count: int, timeout_ms: int = 10_000) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_count(count, timeout=timeout_ms)
