"""``vidsr shots movie.mp4``: list the shots the cut detector finds."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidsr.cli.options import add_command

# The detector's options; left unset, each keeps vidsr.colour.shots.ShotConfig's default
# (imported only when the command runs: it needs PyAV and OpenCV).
_OPTIONS = ("threshold", "min_score", "min_shot_len", "lookahead")


def register(subparsers: Any) -> None:
    """Add the ``shots`` command to the CLI's subparsers."""
    parser = add_command(subparsers, "shots", run)
    parser.add_argument("input", help="video file")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON document instead of a table"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="a cut's change must be this multiple of its neighbours' (default: the detector's)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="smallest change that can be a cut, in 8-bit code values (default: the detector's)",
    )
    parser.add_argument(
        "--min-shot-len",
        type=int,
        default=None,
        help="minimum frames per shot (default: the detector's)",
    )
    parser.add_argument(
        "--lookahead",
        type=int,
        default=None,
        help="frames of look-ahead, also the longest flash ignored (default: the detector's)",
    )


def _timestamp(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:06.3f}"


def run(args: argparse.Namespace) -> int:
    """list the shots (cuts) of a video

    Detect cuts and print each shot's first frame index and timestamp.
    """
    from vidsr.colour.shots import ShotConfig
    from vidsr.errors import OptionError
    from vidsr.media.shot_scan import detect_shots

    given = {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None}
    try:
        config = ShotConfig(**given)
    except ValueError as e:
        raise OptionError(str(e)) from e
    shots = detect_shots(args.input, config)
    if args.json:
        doc = {
            "input": args.input,
            "shots": [
                {
                    "shot": n,
                    "first_frame": s.index,
                    "frames": s.frames,
                    "pts": s.pts,
                    "time": s.time,
                }
                for n, s in enumerate(shots)
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{'shot':>5}  {'first frame':>11}  {'frames':>7}  time")
    for n, s in enumerate(shots):
        print(f"{n:>5}  {s.index:>11}  {s.frames:>7}  {_timestamp(s.time)}")
    return 0
