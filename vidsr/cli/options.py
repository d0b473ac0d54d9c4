"""Pieces several commands share: adding a command, common options, options -> config.

Torch-free (``vidsr --help`` imports it): only argparse, dataclasses and :mod:`vidsr.config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from vidsr.config import COLOUR_MODES, PRECISIONS

T = TypeVar("T")


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    run: Callable[[argparse.Namespace], int],
    help: str | None = None,
    description: str | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Add command ``name`` to the CLI's subparsers; ``run(args)`` runs it (its ``func``).

    The command's help (in ``vidsr --help``) is the first paragraph of ``run``'s docstring,
    its description (in ``vidsr NAME --help``) the rest, each as one line, unless given.
    ``kwargs`` go to ``add_parser`` (e.g. ``formatter_class``)."""
    first, _, rest = inspect.cleandoc(run.__doc__ or "").partition("\n\n")
    help = help if help is not None else " ".join(first.split())
    description = description if description is not None else " ".join(rest.split()) or None
    parser = sub.add_parser(name, help=help, description=description, **kwargs)
    parser.set_defaults(func=run)
    return parser


def add_device_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--device`` (default ``auto``)."""
    parser.add_argument("--device", default="auto", help=help)


def add_tile_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--tile PX`` (default: none)."""
    parser.add_argument("--tile", type=int, default=None, metavar="PX", help=help)


def add_threads_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--threads N`` (default: none)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=help)


def add_colour_option(
    parser: argparse.ArgumentParser, help: str, default: str | None = "shot"
) -> None:
    """``--color``/``--colour`` (as ``args.colour``): one of ``COLOUR_MODES``, default
    ``default`` (``None``: the command decides from the model, see
    :func:`vidsr.engine.upscaler.default_colour`)."""
    parser.add_argument(
        "--color", "--colour", dest="colour", choices=COLOUR_MODES, default=default, help=help
    )


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16`` (default ``auto``) of the model's computation."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="model arithmetic: auto (default) runs fp16 on CUDA and the convolutions in "
        "bf16 on CPUs that have it (AMX, AVX-512 BF16: about 2x faster, within one 8-bit "
        "code of fp32), where the model allows; fp32 everywhere; or bf16 on any device",
    )


def from_args(
    cls: Callable[..., T], args: argparse.Namespace, *, skip: Collection[str] = (), **given: Any
) -> T:
    """Dataclass ``cls`` built from the options in ``args`` named like its fields (except
    ``skip``), and ``given``, which win. Fields neither in ``args`` nor given keep their
    defaults."""
    assert dataclasses.is_dataclass(cls)
    named = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.name not in skip and hasattr(args, f.name)
    }
    return cls(**{**named, **given})
