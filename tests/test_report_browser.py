"""The report rendered by a real browser: headless Chromium over the DevTools protocol.

Chromium (Debian's ``chromium`` package) is installed by the set-up when the tests run as
root and it is missing; otherwise the test is skipped with the reason. The browser is driven
over ``--remote-debugging-pipe`` (no network port, no extra Python package): it loads the
page, records console errors, uncaught exceptions, failed loads and every request, checks
each image decoded, and takes a full-page screenshot that must not be blank.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geojepa.report import build_report
from geojepa.site import Site

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """Chromium's path; installs Debian's package when root and missing, else skips."""
    path = find_chromium()
    if path:
        return path
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("chromium is not installed and the tests are not running as root to install it")
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    path = find_chromium()
    if done.returncode != 0 or path is None:
        tail = (done.stderr or done.stdout)[-300:]
        pytest.skip(f"could not install chromium with apt-get (exit {done.returncode}): {tail}")
    return path


def _high(fd: int) -> int:
    """`fd` moved to a number >= 10, clear of the 3 and 4 the browser's pipe needs."""
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class DevTools:
    """A minimal Chrome DevTools Protocol client over the browser's pipe (fds 3 and 4)."""

    def __init__(self, binary: str, profile: Path) -> None:
        cmd_r, self._cmd_w = (_high(fd) for fd in os.pipe())  # we write, the browser reads fd 3
        self._resp_r, resp_w = (_high(fd) for fd in os.pipe())  # the browser writes fd 4

        # a Python shim puts our pipe ends on fds 3 and 4, where Chromium expects them
        shim = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", shim, str(cmd_r), str(resp_w), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(cmd_r, resp_w),
        )
        os.close(cmd_r)
        os.close(resp_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        for reply in self._messages(timeout):
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        for msg in self._messages(timeout):
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def _messages(self, timeout: float) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                yield json.loads(raw)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self._resp_r], [], [], left)
            if not ready:
                return
            chunk = os.read(self._resp_r, 1 << 20)
            if not chunk:
                return
            self._buf += chunk

    def close(self) -> None:
        try:
            os.write(self._cmd_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._cmd_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass


def render(
    html_path: Path, png_path: Path, *, width: int = 1280, max_height: int = 16000
) -> dict[str, Any]:
    """Load `html_path` in headless Chromium; write a full-page PNG; return what happened:
    console errors, exceptions, failed loads, requested URLs, image status, page height."""
    binary = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="geojepa-chromium-") as profile:
        dt = DevTools(binary, Path(profile))
        try:
            target = dt.send("Target.createTarget", {"url": "about:blank"})
            session = dt.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                dt.send(f"{domain}.enable", session=session)
            dt.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            dt.send("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
            dt.wait_event("Page.loadEventFired", timeout=120)
            images = dt.send(
                "Runtime.evaluate",
                {
                    "expression": "JSON.stringify(Array.from(document.images).map("
                    "i => [i.complete, i.naturalWidth, i.naturalHeight]))",
                    "returnByValue": True,
                },
                session=session,
            )["result"]["value"]
            metrics = dt.send("Page.getLayoutMetrics", session=session)
            height = int(min(metrics["cssContentSize"]["height"], max_height))
            shot = dt.send(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                },
                session=session,
                timeout=120,
            )
        finally:
            dt.close()
    import base64

    png_path.write_bytes(base64.b64decode(shot["data"]))
    events = dt.events
    return {
        "console_errors": [
            e["params"]
            for e in events
            if e.get("method") == "Runtime.consoleAPICalled"
            and e["params"].get("type") in ("error", "assert")
        ],
        "exceptions": [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"],
        "log_errors": [
            e["params"]["entry"]
            for e in events
            if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"
        ],
        "failed_loads": [e["params"] for e in events if e.get("method") == "Network.loadingFailed"],
        "requests": [
            e["params"]["request"]["url"]
            for e in events
            if e.get("method") == "Network.requestWillBeSent"
        ],
        "images": json.loads(images),
        "height": height,
    }


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    from test_report import make_run, make_site

    site = make_site(np.random.default_rng(11))
    site.save(tmp_path / "site")
    run = make_run(tmp_path, Site.load(tmp_path / "site"), np.random.default_rng(12))
    html = build_report(run, tmp_path / "site", tmp_path / "report.html")
    png = tmp_path / "report.png"
    seen = render(html, png)
    assert seen["exceptions"] == []
    assert seen["console_errors"] == []
    assert seen["log_errors"] == []
    assert seen["failed_loads"] == []
    # the page's own file is the only request; everything else is inline
    assert [u for u in seen["requests"] if not u.startswith("data:")] == [html.resolve().as_uri()]
    assert len(seen["images"]) >= 10
    assert all(done and w > 100 and h > 50 for done, w, h in seen["images"]), seen["images"]
    assert seen["height"] > 3000

    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    assert img.shape[1] == 1280 and img.shape[0] == seen["height"]
    background = np.median(img.reshape(-1, 3), axis=0)
    differs = np.abs(img - background).sum(axis=2) > 30
    assert differs.mean() > 0.05, (
        f"screenshot is nearly blank ({differs.mean():.3f} non-background)"
    )
    colours = len(np.unique(img[::4, ::4].reshape(-1, 3), axis=0))
    assert colours > 200, colours
    # the header band (dark blue) is at the top: the page laid out as designed
    top = img[:60].reshape(-1, 3).mean(axis=0)
    assert top[2] > top[0] and top.sum() < 300, top


def test_the_browser_checks_can_fail(tmp_path: Path) -> None:
    """A negative control: a page with a script error, a console error, a broken inline
    image and a missing file is caught by every check the report's test relies on."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><h1>bad</h1>"
        '<img src="data:image/png;base64,AAAA"><img src="missing.png">'
        "<script>console.error('boom'); undefined_function();</script></body></html>",
        encoding="utf-8",
    )
    seen = render(page, tmp_path / "bad.png")
    assert seen["exceptions"]
    assert seen["console_errors"]
    assert seen["failed_loads"]
    assert any(u.endswith("missing.png") for u in seen["requests"])
    assert not all(done and w > 0 for done, w, _ in seen["images"])
