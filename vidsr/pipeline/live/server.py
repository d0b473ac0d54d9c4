"""Serve a live stream over HTTP: MJPEG at ``/stream.mjpg`` (vidsr) and ``/split.mjpg``
(bicubic | vidsr side by side), and a small page at ``/`` that shows them.

Standard library only (``http.server.ThreadingHTTPServer``). Frames are JPEG-encoded in
the handler threads, lazily and once per frame and view whatever the number of clients,
so serving costs the processing loop nothing. Only those three paths exist (404
otherwise); the server binds wherever it is told, which the CLI defaults to localhost.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import cv2
import numpy as np

from vidsr.errors import OptionError

log = logging.getLogger(__name__)
VIEWS = {"/stream.mjpg": "sr", "/split.mjpg": "split"}
_BOUNDARY = "vidsr-frame"
_CLIENT_TIMEOUT_S = 5.0  # a client that stops reading (or sending) is dropped after this
_REQUEST_DEADLINE_S = 10.0  # the whole request line and headers must arrive within this
_STOP_WAIT_S = 2.0  # StreamServer.stop() waits this long in all for the handler threads
# A client that hangs up or stops reading: a debug line, not a warning.
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vidsr stream</title>
<style>body{background:#111;color:#ddd;font:14px sans-serif;margin:1em}
img{max-width:100%;display:block;margin-top:.5em}
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

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, self.client_address)

    def parse_request(self) -> bool:
        """The stdlib's parsing (which reads the headers); then the request deadline is
        lifted: a stream lasts as long as the client reads it."""
        ok = super().parse_request()
        if not self.server.request_complete(self.connection):
            self.close_connection = True
            return False  # dropped by the deadline: nothing more is answered
        return ok

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:  # the client is gone; there is nothing left to flush to
            pass
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:  # http.server's naming
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
        while (got := self.server.hub.next_jpeg(view, seq)) is not None:
            seq, jpeg = got
            head = (
                f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            )
            self.wfile.write(head.encode("ascii") + jpeg + b"\r\n")
            self.wfile.flush()
        self.wfile.write(f"--{_BOUNDARY}--\r\n".encode("ascii"))

    def log_message(self, format: str, *args: object) -> None:
        log.debug("HTTP client %s: %s", self.address_string(), _printable(format % args))

    def log_error(self, format: str, *args: object) -> None:
        """Refused requests (bad syntax, 414, unsupported method) are one warning line;
        a 404 or a timed-out client only a debug line."""
        code = args[0] if args and isinstance(args[0], int) else None
        quiet = (
            code == HTTPStatus.NOT_FOUND
            or format.startswith("Request timed out")
            or self.server.dropped(self.connection)  # its one line is already logged
        )
        text = f"refused with {code}: {args[1]}" if code is not None else format % args
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "HTTP client %s: %s",
            self.address_string(),
            _printable(text),
        )


@dataclass
class _Client:
    """A connected client: its handler thread and, until its request is in, a deadline."""

    thread: threading.Thread
    address: str
    deadline: float | None
    dropped: bool = False


class StreamServer(ThreadingHTTPServer):
    """The HTTP server. :meth:`stop` is bounded: streams end, clients that do not go are
    disconnected, and handler threads (daemons) are waited for ``stop_wait`` seconds in all.

    A request must arrive whole (request line and headers) within ``request_deadline``
    seconds, however slowly it trickles in; each read or write also times out after
    5 s. A bad client costs one log line, never a traceback.

    Raises:
        OptionError: the address cannot be bound (in use, not local, no IPv6...).
    """

    daemon_threads = True  # stop() waits for them, boundedly; none can hold the process
    block_on_close = False
    hub: FrameHub

    def __init__(
        self,
        address: tuple[str, int],
        hub: FrameHub,
        *,
        request_deadline: float = _REQUEST_DEADLINE_S,
        stop_wait: float = _STOP_WAIT_S,
    ) -> None:
        host, port = address
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            super().__init__(address, _Handler)
        except OSError as e:
            raise OptionError(_bind_error(host, port, e)) from None
        self.hub = hub
        self.request_deadline = request_deadline
        self.stop_wait = stop_wait
        self._clients: dict[socket.socket, _Client] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.25},
            name="vidsr-http",
            daemon=True,
        )
        if not _is_loopback(self.server_address[0]):
            log.warning(
                "serving on %s: the stream has no authentication and anyone who can reach "
                "this address on the network can watch it",
                self.url,
            )

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow off-line)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def track(self, connection: socket.socket, address: tuple) -> None:
        """Register a new client (called on its handler thread)."""
        client = _Client(
            threading.current_thread(), str(address[0]), time.monotonic() + self.request_deadline
        )
        with self._lock:
            self._clients[connection] = client
            closing = self._closing
        if closing:
            _disconnect(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._clients.pop(connection, None)

    def request_complete(self, connection: socket.socket) -> bool:
        """The client's request is in: lift its deadline. ``False`` if it was dropped."""
        with self._lock:
            client = self._clients.get(connection)
            if client is None or client.dropped:
                return False
            client.deadline = None
            return True

    def dropped(self, connection: socket.socket) -> bool:
        """Whether the request deadline dropped this client."""
        with self._lock:
            client = self._clients.get(connection)
            return client is not None and client.dropped

    def service_actions(self) -> None:
        """Called by the serve loop about 4 times a second: drop clients whose request has
        not arrived whole in time (a trickle of bytes never trips the per-read timeout)."""
        now = time.monotonic()
        with self._lock:
            late = [
                (c, k)
                for c, k in self._clients.items()
                if k.deadline is not None and now > k.deadline and not k.dropped
            ]
            for _, client in late:
                client.dropped = True
        for connection, client in late:
            log.warning(
                "HTTP client %s: dropped, its request took over %g s",
                client.address,
                self.request_deadline,
            )
            _disconnect(connection)

    def handle_error(self, request: object, client_address: tuple) -> None:
        """One line per failed request instead of socketserver's traceback: debug for a
        client that went away, a warning otherwise (the traceback at debug level)."""
        error = sys.exc_info()[1]
        host = client_address[0] if client_address else "?"
        if isinstance(error, _DISCONNECTS) or (isinstance(error, OSError) and self._closing):
            log.debug("HTTP client %s: went away (%s)", host, error)
            return
        log.warning(
            "HTTP client %s: request failed: %s: %s",
            host,
            type(error).__name__,
            _printable(str(error)),
        )
        log.debug("HTTP client %s: request failed", host, exc_info=error)

    def stop(self) -> None:
        """End the streams, stop accepting, disconnect the clients still there and wait
        for their threads, ``stop_wait`` seconds at most in all."""
        self.hub.close()
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
        self.server_close()
        deadline = time.monotonic() + self.stop_wait
        with self._lock:  # a client still sending its request will not be answered now
            self._closing = True
            unanswered = [c for c, k in self._clients.items() if k.deadline is not None]
        for connection in unanswered:
            _disconnect(connection)
        self._join(deadline - self.stop_wait / 2)  # the streams end on their own first
        with self._lock:
            remaining = list(self._clients)
        for connection in remaining:
            _disconnect(connection)
        if not self._join(deadline):
            log.debug("HTTP server stopped with handler threads still ending")

    def _join(self, deadline: float) -> bool:
        """Wait for the handler threads until ``deadline``; ``True`` when none is left."""
        while True:
            with self._lock:
                threads = [c.thread for c in self._clients.values()]
            alive = [t for t in threads if t.is_alive()]
            if not alive:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            alive[0].join(min(left, 0.05))


def _disconnect(connection: socket.socket) -> None:
    """Shut a client's socket down: its thread's blocked read or write returns at once."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _bind_error(host: str, port: int, error: OSError) -> str:
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = error.strerror or str(error)
    if error.errno == errno.EADDRINUSE:
        return f"cannot serve on {shown}: port {port} is already in use (pick another, or :0)"
    if isinstance(error, socket.gaierror):
        return f"cannot serve on {shown}: not an address of this machine ({reason})"
    return f"cannot serve on {shown}: {reason}"


def _printable(text: str, limit: int = 200) -> str:
    """Client-supplied text made safe for a log line: control characters escaped, cut to
    ``limit`` characters."""
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return safe if len(safe) <= limit else safe[:limit] + "..."


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
