"""``--cluster`` errors that need no running cluster: addresses nobody answers at, and Ray
missing (issue 21: one clear line, nothing created)."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
from conftest import BICUBIC_CPU, make_video

from vidsr.cli import main
from vidsr.errors import OptionError
from vidsr.pipeline.cluster.session import check_reachable, split_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.5:6380", ("10.0.0.5", 6380)),
        ("head.local", ("head.local", 6379)),
        ("ray://head.local", ("head.local", 10001)),
        ("ray://10.0.0.5:10002/", ("10.0.0.5", 10002)),
        ("[::1]:6379", ("::1", 6379)),
        ("[fe80::1]", ("fe80::1", 6379)),
    ],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


def test_a_port_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(OptionError, match="port must be a number"):
        split_address("head:ray")


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nobody_at_the_address_is_one_line_at_once() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(OptionError) as raised:
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 3.5
    message = str(raised.value)
    assert "\n" not in message
    assert f"nothing answers at 127.0.0.1:{port}" in message and "ray start --head" in message


def test_a_listening_address_passes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")


def test_cli_unreachable_cluster_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("ray")  # without Ray the install hint comes first (below)
    src = make_video(tmp_path / "a.mp4", n=3)
    out = tmp_path / "out"
    address = f"127.0.0.1:{closed_port()}"
    assert (
        main(["upscale", str(src), str(src), "-o", f"{out}/", *BICUBIC_CPU, "--cluster", address])
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing answers" in err[0], err
    assert not out.exists()
    assert (
        main(
            [
                "upscale",
                str(src),
                "-o",
                str(tmp_path / "one.mp4"),
                *BICUBIC_CPU,
                "--cluster",
                address,
            ]
        )
        == 1
    )
    assert not (tmp_path / "one.mp4").exists()


def test_library_without_ray_leaves_no_output_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    src = make_video(tmp_path / "a.mp4", n=3)
    out = tmp_path / "out"
    code = main(["upscale", str(src), str(src), "-o", f"{out}/", *BICUBIC_CPU, "--cluster", "auto"])
    assert code == 1
    assert 'pip install "vidsr[ray]"' in capsys.readouterr().err
    assert not out.exists()
