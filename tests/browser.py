"""Headless Chromium (Debian's `chromium`) for the run page's tests and benchmark, with
a recording proxy: every request the browser makes to anything but loopback goes
through it, so a page that reaches outside its folder is caught."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Chromium's own service traffic, which no flag fully silences (time, component and
# extension updates, sign-in): a page's request to anywhere else is the page's.
BROWSER_SERVICES = (".google.com", ".googleapis.com", ".gstatic.com", ".gvt1.com")
# As quiet as flags make it: no first-run, sync, component or safe-browsing traffic.
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--metrics-recording-only",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
    "--disable-breakpad",
    "--no-default-browser-check",
    "--password-store=basic",
    "--disable-features=Translate,OptimizationHints,MediaRouter,NetworkTimeServiceQuerying,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--hide-scrollbars",
    "--window-size=1280,2400",
)


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("chromium is not installed (.ci/run installs Debian's package)")
    return found


def headless(url: str, *extra: str, proxy: str | None = None, timeout: float = 120) -> str:
    """Load `url` and return what Chromium printed (with --dump-dom, the DOM)."""
    profile = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    command = [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *extra]
    if proxy:
        command.append(f"--proxy-server={proxy}")
    try:
        result = subprocess.run(
            [*command, url], capture_output=True, text=True, timeout=timeout, check=False
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str]

    def _record(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        self.send_response(502)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def recording_proxy() -> Iterator[tuple[str, list[str]]]:
    """A proxy that answers 502 to everything and remembers what was asked."""
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    with _serving(handler) as url:
        yield url, seen


@contextmanager
def file_server(root: Path) -> Iterator[tuple[str, list[str]]]:
    """A static HTTP server for `root` that remembers every path asked for."""
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            seen.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with _serving(Handler) as url:
        yield url, seen


@contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a free local port, in a thread, for the block's duration."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def page_requests(seen: list[str]) -> list[str]:
    """What a recording proxy saw, less the browser's own service traffic."""
    from urllib.parse import urlsplit

    def host(request: str) -> str:
        target = request.split(" ", 1)[1]
        return (urlsplit(target).hostname if "://" in target else target.split(":")[0]) or ""

    return [r for r in seen if not host(r).endswith(BROWSER_SERVICES)]
