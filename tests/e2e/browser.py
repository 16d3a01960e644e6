"""Headless Chromium driven through the DevTools protocol, as a user's browser, on 127.0.0.1 only.

:class:`Chromium` starts Debian's ``chromium`` (``make chromium``; ``DOCSUM_CHROMIUM`` names
another binary) with a throwaway profile and everything that would call out turned off
(component updates, safe browsing, sync; no host name resolves: only 127.0.0.1 is reached).
:class:`Page` speaks CDP over the page's websocket: it clicks with the mouse at an element's
centre and types with the keyboard (so the page's own event handlers run, as for a person),
evaluates expressions, and records every request the page makes, every console error and
every uncaught exception.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

#: Flags that keep a headless browser to the pages it is sent to.
QUIET_FLAGS = (
    "--headless=new",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--safebrowsing-disable-auto-update",
    "--no-pings",
    "--metrics-recording-only",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1000",
)


#: urllib without the environment's proxy: the endpoint is on 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BrowserError(RuntimeError):
    """The browser or the page did not do what was asked (with what it did instead)."""


def chromium_binary() -> str:
    """``DOCSUM_CHROMIUM``, else ``chromium`` on PATH; BrowserError saying how to get one."""
    binary = os.environ.get("DOCSUM_CHROMIUM") or shutil.which("chromium")
    if not binary:
        raise BrowserError("chromium not found: run `make chromium` or set DOCSUM_CHROMIUM")
    return binary


@dataclass
class Page:
    """One tab, through its DevTools websocket."""

    ws: websocket.WebSocket
    requests: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _loads: int = 0

    # --- protocol ----------------------------------------------------------------------------
    def send(self, method: str, timeout_s: float = 30.0, **params: Any) -> dict[str, Any]:
        """Call ``method``; its result. Events that arrive meanwhile are recorded."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                message = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                raise BrowserError(f"{method}: no answer in {timeout_s:g} s") from None
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._event(message.get("method", ""), message.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.failures.append(f"{params.get('errorText')} ({params.get('blockedReason', '')})")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description", details["text"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"{params['entry']['source']}: {params['entry']['text']}")
        elif method == "Page.loadEventFired":
            self._loads += 1
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )

    def enable(self) -> None:
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    # --- what a user does --------------------------------------------------------------------
    def navigate(self, url: str, timeout_s: float = 30.0) -> None:
        """Open ``url`` and wait for its load event."""
        loads = self._loads
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        # The previous document says 'complete' too: wait for the new one's load event.
        deadline = time.monotonic() + timeout_s
        while self._loads == loads:
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load in {timeout_s:g} s")
            self.send("Runtime.evaluate", expression="0")  # receives the events meanwhile
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; its value. BrowserError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"waited {timeout_s:g} s for {what or expression}; page errors: {self.errors}"
                )
            time.sleep(0.1)

    def click(self, element: str, timeout_s: float = 10.0) -> None:
        """Press and release the left button at the centre of ``element`` (a JS expression
        for an element), once it is on the page and visible."""
        centre = self.wait_for(
            f"""(() => {{
                const el = {element};
                if (!el) return null;
                el.scrollIntoView({{block: "center"}});
                const r = el.getBoundingClientRect();
                return r.width && r.height ? [r.x + r.width / 2, r.y + r.height / 2] : null;
            }})()""",
            timeout_s,
            what=f"{element} to be visible",
        )
        x, y = centre
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_text(self, element: str, text: str) -> None:
        """Focus ``element`` (an input or a textarea), select its content and type ``text``
        over it, as keyboard input."""
        self.wait_for(
            f"(() => {{ const el = {element}; if (!el) return false; "
            "el.focus(); el.select(); return document.activeElement === el; })()",
            what=f"{element} to take the focus",
        )
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path, down_to: str | None = None) -> Path:
        """The page as a PNG at ``path``: from its top to the bottom of ``down_to`` (a JS
        expression for an element), or the whole page (not only the window)."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        height = size["height"]
        if down_to is not None:
            height = self.evaluate(
                f"(() => {{ const r = ({down_to}).getBoundingClientRect();"
                " return r.bottom + window.scrollY + 16; })()"
            )
        clip = {"x": 0, "y": 0, "width": size["width"], "height": height, "scale": 1}
        shot = self.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@dataclass
class Chromium:
    """A headless Chromium process with its DevTools endpoint on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int

    @classmethod
    @contextmanager
    def launch(cls, profile: Path, timeout_s: float = 30.0) -> Iterator[Chromium]:
        """Start Chromium with a fresh profile in ``profile``; stopped on exit."""
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a previous run's
        flags = [*QUIET_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # the setuid-less sandbox refuses root
        log = (profile / "chromium.log").open("wb")
        proc = subprocess.Popen(
            [chromium_binary(), *flags, "about:blank"], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield cls(proc, cls._wait_port(proc, profile / "DevToolsActivePort", timeout_s))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()

    @staticmethod
    def _wait_port(proc: subprocess.Popen[bytes], port_file: Path, timeout_s: float) -> int:
        """The port Chromium chose, from the file it writes once its endpoint listens."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = (port_file.parent / "chromium.log").read_text(errors="replace")
                raise BrowserError(f"chromium exited with {proc.returncode}: {log[-2000:]}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if lines:
                return int(lines[0])
            time.sleep(0.1)
        raise BrowserError(f"chromium wrote no {port_file.name} within {timeout_s:g} s")

    def new_page(self) -> Page:
        """A new tab, its Page/Network/Runtime/Log events recorded."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT"
        )
        with _DIRECT.open(req, timeout=10) as r:
            target = json.load(r)
        # Chromium refuses websocket clients that send an Origin it was not told to allow.
        ws = websocket.create_connection(
            target["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        page = Page(ws)
        page.enable()
        return page
