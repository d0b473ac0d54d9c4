"""The stream server against clients that misbehave: malformed requests, hang-ups, a
trickle of header bytes, an oversized request line; and binding mistakes. Every client
here connects to 127.0.0.1 or ::1 only."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import read_frames

from vidsr.cli import main
from vidsr.config import RunConfig
from vidsr.errors import OptionError
from vidsr.pipeline.live.server import FrameHub, StreamServer
from vidsr.pipeline.live.stream import StreamConfig, run_stream

LAVFI = "lavfi:testsrc2=size=64x48:rate=30"
SERVER_LOG = "vidsr.pipeline.live.server"


@contextlib.contextmanager
def serving(**options: float) -> Iterator[StreamServer]:
    """A server on 127.0.0.1 (a free port) with a hub that publishes a small frame
    every 20 ms; stopped on exit."""
    hub = FrameHub()
    server = StreamServer(("127.0.0.1", 0), hub, **options)
    server.start()
    done = threading.Event()
    image = np.zeros((16, 16, 3), np.uint8)

    def publish() -> None:
        while not done.is_set():
            hub.publish(lambda view: image)
            time.sleep(0.02)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        yield server
    finally:
        done.set()
        publisher.join()
        server.stop()


def _connect(server: StreamServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5)


def _reset(sock: socket.socket) -> None:
    """Hang up abruptly: close with a zero linger, so the peer gets a reset."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _get(server: StreamServer, path: str = "/") -> bytes:
    with _connect(server) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        return sock.recv(64)


def _server_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == SERVER_LOG and r.levelno == level]


def test_malformed_requests_and_hang_ups_log_one_line_and_no_traceback(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger=SERVER_LOG)
    with serving() as server:
        for _ in range(3):  # a TLS hello to the plain HTTP port, then a hang-up
            sock = _connect(server)
            sock.sendall(b"\x16\x03\x01garbage\r\n")
            _reset(sock)
        for path in ("/", "/stream.mjpg"):  # hang up in the middle of the response
            for _ in range(3):
                sock = _connect(server)
                sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                if path != "/":
                    sock.recv(100)
                _reset(sock)
        time.sleep(0.5)
        assert _get(server).startswith(b"HTTP/1.0 200")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)
    warnings = _server_lines(caplog, logging.WARNING)
    assert len(warnings) == 3 and all("refused with 400" in w for w in warnings), warnings
    assert all("\x16" not in w for w in warnings)  # client bytes are escaped


def test_a_70_kb_request_line_is_refused_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger=SERVER_LOG)
    with serving() as server:
        with _connect(server) as sock:
            sock.sendall(b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):  # or it closes: both are fine
                assert sock.recv(64).startswith(b"HTTP/1.0 414")
        assert _get(server).startswith(b"HTTP/1.0 200")
        assert _get(server, "/favicon.ico").startswith(b"HTTP/1.0 404")
    assert "Traceback" not in capsys.readouterr().err
    warnings = _server_lines(caplog, logging.WARNING)
    assert len(warnings) == 1 and "refused with 414" in warnings[0], warnings  # 404: debug


def test_a_trickling_request_is_dropped_at_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    with serving(request_deadline=0.6) as server, _connect(server) as sock:
        started = time.monotonic()
        closed = False
        for byte in b"GET /stream.mjpg HTTP/1.0\r\nX-Slow: " + b"a" * 50:
            try:
                sock.send(bytes([byte]))
                sock.settimeout(0.2)
                closed = sock.recv(64) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
            if closed:
                break
        assert closed and time.monotonic() - started < 3.0
    assert any("took over 0.6 s" in w for w in _server_lines(caplog, logging.WARNING))


def test_stop_is_bounded_with_a_client_that_never_reads() -> None:
    with serving(stop_wait=1.0) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.server_address[1]))
        sock.sendall(b"GET /split.mjpg HTTP/1.0\r\n\r\n")
        trickler = _connect(server)
        trickler.sendall(b"GET /")
        time.sleep(0.5)  # the stream fills the socket buffers and its writes block
        started = time.monotonic()
    assert time.monotonic() - started < 3.0
    sock.close()
    trickler.close()


@pytest.mark.slow
def test_a_slow_client_does_not_keep_a_recorded_stream_from_ending(tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    stop_trickle = threading.Event()

    def trickle(url: str) -> None:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for byte in b"GET /stream.mjpg HTTP/1.0\r\nX-Slow: " + b"a" * 100:
                if stop_trickle.wait(0.5):
                    return
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return

    def on_ready(url: str | None) -> None:
        assert url is not None
        threading.Thread(target=trickle, args=(url,), daemon=True).start()

    config = StreamConfig(
        source=LAVFI,
        run=RunConfig(model="bicubic", device="cpu", colour="off"),
        record=out,
        serve=("127.0.0.1", 0),
        duration=2.0,
    )
    started = time.monotonic()
    try:
        summary = run_stream(config, on_ready=on_ready)
    finally:
        stop_trickle.set()
    assert summary.end_reason.startswith("--duration")
    assert time.monotonic() - started < 12.0  # warm-up + 2 s + a bounded stop
    assert len(read_frames(out)) == summary.stats.frames >= 1  # published and playable
    assert not (tmp_path / "rec.partial.mp4").exists()


def test_a_port_in_use_is_a_typed_error_and_one_cli_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OptionError, match="already in use"):
            StreamServer(("127.0.0.1", port), FrameHub())
        args = f"--device cpu --model bicubic --quiet --frames 2 --serve 127.0.0.1:{port}"
        code = main(["stream", "--source", LAVFI, *args.split()])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    expected = f"cannot serve on 127.0.0.1:{port}: port {port} is already in use"
    assert err.strip().startswith(f"vidsr: error: {expected}") and len(err.splitlines()) == 1


def test_ipv6_loopback_in_brackets_serves(caplog: pytest.LogCaptureFixture) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        server = StreamServer(("::1", 0), FrameHub())
    except OptionError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    server.start()
    try:
        assert server.url.startswith("http://[::1]:")
        with socket.create_connection(("::1", server.server_address[1]), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.0 200")
    finally:
        server.stop()
    assert not _server_lines(caplog, logging.WARNING)  # loopback: no network warning


def test_a_non_loopback_bind_warns_that_the_stream_is_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=SERVER_LOG)
    server = StreamServer(("0.0.0.0", 0), FrameHub())  # bound, never connected to
    server.stop()
    warnings = _server_lines(caplog, logging.WARNING)
    assert len(warnings) == 1 and "no authentication" in warnings[0]
    caplog.clear()
    StreamServer(("127.0.0.1", 0), FrameHub()).stop()
    assert not _server_lines(caplog, logging.WARNING)
