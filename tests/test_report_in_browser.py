"""The built report, seen in a real browser: headless Chromium opens it from disk and a product
owner's questions are answered on the page. One screenshot is kept: reports/release-report.png.

Chromium comes from Debian's `chromium` package (`.ci/run` installs it); without it this test
is skipped, saying so. Chromium is driven over the DevTools protocol with the `websockets`
package the suite already uses, so nothing else is installed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from conftest import REPO, run_spec
from test_report_build import FEATURES, expected_elsewhere
from support.build_report import build
from support.catalogue import RequirementCatalogue

CHROMIUM = next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser"))), None)
SCREENSHOT = REPO / "reports" / "release-report.png"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: `apt-get install "
                                                "chromium`; .ci/run installs it), so the report is not opened"),
    pytest.mark.skipif(shutil.which("npm") is None and not (REPO / "node_modules").exists(),
                       reason="the report needs Node.js and npm (Allure 3 comes from the npm registry)"),
]


class Page:
    """One Chromium tab, driven over the DevTools protocol."""

    def __init__(self, socket):
        self._socket = socket
        self._next_id = 0
        self.requested: list[str] = []

    def call(self, method: str, **params):
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=30))
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(self, *needles: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(needle in text for needle in needles) or time.monotonic() > deadline:
                return text
            time.sleep(0.1)

    def click_text(self, text: str, selector: str = "*", prefix: bool = False) -> None:
        """Click the innermost element whose text is ``text`` (or starts with it)."""
        clicked = self.evaluate(f"""(() => {{
            const wanted = {json.dumps(text)};
            const hits = [...document.querySelectorAll({json.dumps(selector)})].filter(e => {{
                const t = e.textContent.trim();
                return {str(prefix).lower()} ? t.startsWith(wanted) : t === wanted;
            }});
            const target = hits.find(e => ![...e.children].some(c => hits.includes(c))) || hits[0];
            if (!target) return false;
            target.click();
            return true;
        }})()""")
        assert clicked, f"nothing on the page reads {text!r}:\n{self.text()[:2000]}"

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self, path: Path) -> None:
        """The whole page, below the fold included (the report scrolls inside its own panes)."""
        height = self.evaluate("Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=min(int(height) + 40, 5000),
                  deviceScaleFactor=1, mobile=False)
        time.sleep(0.3)
        shot = self.call("Page.captureScreenshot", format="png")
        self.call("Emulation.clearDeviceMetricsOverride")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def browser():
    profile = tempfile.mkdtemp(prefix="chromium-")
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1400,1800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline, "Chromium did not start"
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            tab = next(t for t in json.load(answer) if t["type"] == "page")
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as socket:
            page = Page(socket)
            page.call("Page.enable")
            page.call("Network.enable")
            yield page
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


def test_a_product_owner_reads_the_release_report_in_a_browser(browser, planted_server, tmp_path):
    server = planted_server("leak")  # a deliberately failing run: another user's data reaches Bob
    run = run_spec(*FEATURES, env=server.target, tmp_path=tmp_path)
    assert run.returncode != 0, run.output
    report = build(run.allure_dir, tmp_path / "report", tmp_path / "history.jsonl")
    by_id = json.loads((report.index.parent / "test-results.json").read_text())["byId"]
    failed_id = next(i for i, t in by_id.items() if t["name"] == "Bob sees nothing of Alice's conversation")

    # The failed scenario's page: its status, requirement, business value and evidence.
    browser.open(f"{report.index.as_uri()}#{failed_id}")
    text = browser.wait_for_text("Bob sees nothing of Alice's conversation", "ISO-01", "transcript: Bob's phone")
    assert "Failed" in text
    assert "ISO-01" in text and "When User A sends or receives private data" in text
    assert "no user ever receives another user's data, under any load" in text  # the business goal
    assert "Critical" in text and "isolation broken: Bob's phone received Alice's laptop's private data" in text
    assert "tokens (claims only, signatures removed)" in text and "isolation violation: Alice's laptop -> Bob's phone" in text
    browser.click_text("transcript: Bob's phone")
    text = browser.wait_for_text("Transcript of Bob's phone")
    assert "Transcript of Bob's phone" in text and "<- {" in text and "code=1000" in text
    browser.screenshot(SCREENSHOT)

    # The home page: the environment, and the coverage of every requirement of the catalogue.
    browser.open(report.index.as_uri())
    text = browser.wait_for_text("Global Attachments", "Backend version")
    assert server.url in text and "development" in text and "Suite version" in text
    browser.click_text("Global Attachments", "button", prefix=True)
    browser.click_text("requirement-coverage.csv")
    catalogue = RequirementCatalogue.load()
    text = browser.wait_for_text("Business goal", *(f"{r.id}: " for r in catalogue))
    rows = {line.split("\t")[1].split(":")[0]: line.split("\t")[0] for line in text.splitlines()
            if line.count("\t") >= 3 and line.split("\t")[0] in ("passing", "failing", "not run", "not covered")}
    assert sorted(rows) == sorted(r.id for r in catalogue), "every requirement is listed, with its status"
    assert rows["ISO-01"] == "failing" and rows["AUTH-01"] == "passing"
    not_run, not_covered = expected_elsewhere()
    assert {rows[rid] for rid in not_run} == {"not run"}
    assert all(rows[rid] == "not covered" for rid in not_covered)

    # Opened from disk, it asked no server for anything.
    assert [url for url in browser.requested if not url.startswith(("file:", "data:", "blob:"))] == []
    assert SCREENSHOT.stat().st_size > 10_000
