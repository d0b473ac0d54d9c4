"""Serve a live stream over HTTP: MJPEG at ``/stream.mjpg`` (vidsr) and ``/split.mjpg``
(bicubic | vidsr side by side), and a small page at ``/`` that shows them.

Standard library only (``http.server.ThreadingHTTPServer``). Frames are JPEG-encoded in
the handler threads, lazily and once per frame and view whatever the number of clients,
so serving costs the processing loop nothing. Only those three paths exist (404
otherwise); the server binds wherever it is told, which the CLI defaults to localhost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import cv2
import numpy as np

from vidsr.errors import OptionError

log = logging.getLogger(__name__)
VIEWS = {"/stream.mjpg": "sr", "/split.mjpg": "split"}
_BOUNDARY = "vidsr-frame"
_CLIENT_TIMEOUT_S = 5.0  # a client that stops reading is dropped after this

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vidsr stream</title>
<style>body{background:#111;color:#ddd;font:14px sans-serif;margin:1em}img{max-width:100%;display:block;margin-top:.5em}
button{font:inherit}</style></head>
<body>
<div><button id="sr">vidsr</button> <button id="split">bicubic | vidsr</button>
<span id="status">connecting...</span></div>
<img id="view" src="/stream.mjpg" alt="vidsr live stream">
<script>
const view = document.getElementById("view"), status = document.getElementById("status");
view.onload = () => { status.textContent = "live"; };
view.onerror = () => { status.textContent = "stream ended"; };
document.getElementById("sr").onclick = () => { view.src = "/stream.mjpg"; };
document.getElementById("split").onclick = () => { view.src = "/split.mjpg"; };
</script>
</body></html>
"""


class FrameHub:
    """The newest output frame, shared with the HTTP handler threads.

    ``render(view)`` turns the published frame into a ``(H, W, 3)`` uint8 BGR picture for
    a view (``"sr"`` or ``"split"``); the hub JPEG-encodes it on first request.
    """

    def __init__(self, quality: int = 80) -> None:
        self.quality = quality
        self._cond = threading.Condition()
        self._seq = 0
        self._render: Callable[[str], np.ndarray] | None = None
        self._cache: dict[str, bytes] = {}
        self.closed = False

    def publish(self, render: Callable[[str], np.ndarray]) -> None:
        """Make a new frame current; ``render`` is called lazily from handler threads."""
        with self._cond:
            self._seq += 1
            self._render = render
            self._cache = {}
            self._cond.notify_all()

    def close(self) -> None:
        """End every stream (clients see the multipart response end)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def next_jpeg(self, view: str, after: int, timeout: float = 1.0) -> tuple[int, bytes] | None:
        """Wait for a frame newer than sequence number ``after``; ``(seq, jpeg)``, or
        ``None`` when the hub is closed. Encoding happens under the lock, so concurrent
        clients share one encode per frame and view."""
        with self._cond:
            while self._seq <= after or self._render is None:
                if self.closed:
                    return None
                self._cond.wait(timeout)
            if self.closed:
                return None
            jpeg = self._cache.get(view)
            if jpeg is None:
                ok, buf = cv2.imencode(
                    ".jpg", self._render(view), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
                )
                jpeg = buf.tobytes() if ok else b""
                self._cache[view] = jpeg
            return self._seq, jpeg


class _Handler(BaseHTTPRequestHandler):
    server: StreamServer
    timeout = _CLIENT_TIMEOUT_S
    protocol_version = "HTTP/1.0"  # one request per connection; the stream ends by closing it

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", PAGE)
        elif path in VIEWS:
            self._stream(VIEWS[path])
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, view: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seq = 0
        try:
            while (got := self.server.hub.next_jpeg(view, seq)) is not None:
                seq, jpeg = got
                head = f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode("ascii") + jpeg + b"\r\n")
                self.wfile.flush()
            self.wfile.write(f"--{_BOUNDARY}--\r\n".encode("ascii"))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client went away

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s: %s", self.address_string(), format % args)


class StreamServer(ThreadingHTTPServer):
    """The HTTP server; handler threads are joined by :meth:`stop`."""

    daemon_threads = False  # server_close() joins them: no thread outlives the stream
    hub: FrameHub

    def __init__(self, address: tuple[str, int], hub: FrameHub) -> None:
        super().__init__(address, _Handler)
        self.hub = hub
        self._thread = threading.Thread(target=self.serve_forever, name="vidsr-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the streams, stop accepting, and join every thread."""
        self.hub.close()
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
        self.server_close()


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> ``(host, port)``; the host defaults to
    127.0.0.1 (port 0 picks a free one).

    Raises:
        OptionError: not an address.
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise OptionError(f"not an address: {text!r} (expected HOST:PORT, e.g. 127.0.0.1:8080)")
    return host, int(port)
