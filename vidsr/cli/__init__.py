"""Command-line entry point: ``vidsr <command> ...``.

The CLI is the only layer that prints, shows progress bars or exits. Each command lives in
its own module exposing ``register(subparsers)``, which adds a parser whose ``func`` default
is ``run(args) -> int``. Library errors (:class:`vidsr.errors.VidsrError`) become one line on
stderr and exit code 1; Ctrl-C exits 130 and SIGTERM 143. ``VIDSR_DEBUG=1`` re-raises.
``main`` also sets the process's heap to keep freed memory for the next frame
(:func:`vidsr.allocator.keep_freed_memory`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from vidsr.allocator import keep_freed_memory
from vidsr.errors import VidsrError

# Command modules, in the order `vidsr --help` lists them.
COMMAND_MODULES = (
    "vidsr.cli.upscale_cmd",
    "vidsr.cli.preview_cmd",
    "vidsr.cli.stream_cmd",
    "vidsr.cli.demo_cmd",
    "vidsr.cli.models_cmd",
    "vidsr.cli.shots_cmd",
    "vidsr.cli.eval_cmd",
    "vidsr.cli.compare_cmd",
    "vidsr.cli.dataset_cmd",
    "vidsr.cli.train_cmd",
)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``vidsr: error: ...``) and exit code 2, like every
    other error, instead of argparse's usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"vidsr: error: {message} (see `{self.prog} --help`)\n")


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that ends each option with ``(default: ...)``, except required options and
    on-off flags (off unless given)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or isinstance(action, argparse._StoreTrueAction) or action.default == []:
            return action.help
        return super()._get_help_string(action)


class Terminated(BaseException):
    """Raised on the main thread when SIGTERM arrives, so cleanup runs as for Ctrl-C."""


def build_parser() -> argparse.ArgumentParser:
    from vidsr import __version__

    parser = OneLineParser(
        prog="vidsr",
        description="Video super-resolution: upscale movies, frame folders and streams.",
    )
    parser.add_argument("--version", action="version", version=f"vidsr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="vidsr: %(levelname)s: %(message)s",
    )
    # torch.compile's C++ toolchain check warns that no CUDA runtime exists on a CPU-only
    # machine, which is expected there and not the user's concern.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    keep_freed_memory()
    debug = os.environ.get("VIDSR_DEBUG") == "1"
    previous = None
    if hasattr(signal, "SIGTERM"):
        try:
            previous = signal.signal(signal.SIGTERM, _raise_terminated)
        except ValueError:  # not the main thread (e.g. called from a test thread)
            previous = None
    try:
        return int(args.func(args) or 0)
    except VidsrError as e:
        if debug:
            raise
        print(f"vidsr: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print("vidsr: stopped (Ctrl-C)", file=sys.stderr)
        return 130
    except Terminated:
        print("vidsr: stopped (SIGTERM)", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
