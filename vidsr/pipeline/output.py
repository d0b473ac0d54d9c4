"""The output file of a run: checked before any work, written under a temporary name.

A video is written to ``out.partial.mp4`` and renamed to ``out.mp4`` only once complete
(:func:`partial_output`), so a finished name is always a finished file. A failed run
removes its partial file (or gives back the one it resumed from); an interrupted one
(Ctrl-C, SIGTERM) keeps it, flushed, for ``--resume``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vidsr.errors import EncodeError, OutputExistsError
from vidsr.media.resume import ResumePoint, read_resume_point, remove_settings, write_settings

log = logging.getLogger(__name__)


def partial_path(dst: Path) -> Path:
    """The temporary name written to until the output is complete: ``out.partial.mp4``."""
    return dst.with_name(f"{dst.stem}.partial{dst.suffix}")


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Fail early on output problems: exists, same as input, folder missing or read-only."""
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"output exists: {dst} (use --overwrite to replace it)")
    if dst.exists() and dst.is_dir():
        raise EncodeError(f"output is a directory: {dst}")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise EncodeError(f"output would overwrite the input: {dst}")
    folder = dst.parent
    if not folder.is_dir():
        raise EncodeError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise EncodeError(f"output folder is not writable: {folder}")


@dataclass(frozen=True)
class PartialOutput:
    """Where to write: ``path`` (the ``.partial`` name) and, when resuming, the earlier
    partial output to continue from (moved aside to ``.partial-previous``)."""

    path: Path
    resume_from: ResumePoint | None = None


@contextmanager
def partial_output(
    dst: Path, settings: dict | None = None, *, resume: bool = False
) -> Iterator[PartialOutput]:
    """Own the partial file of output ``dst`` for the ``with`` block that writes it.

    Args:
        dst: the final output path.
        settings: the run's settings (:func:`~vidsr.media.resume.run_settings`), recorded
            beside the partial file so a later ``--resume`` can check them; ``None`` for
            outputs that cannot be resumed.
        resume: continue an earlier partial output written with the same ``settings``,
            when there is one (it is moved aside and read from; see ``resume_from``).

    On leaving the block: success publishes the file under ``dst`` (and drops the
    settings record and the earlier partial); an ``Exception`` removes the partial file
    and gives back the earlier one, if resuming, to resume again; a ``BaseException``
    such as ``KeyboardInterrupt`` keeps the partial file (the sink has flushed it). The
    exception always propagates.
    """
    path = partial_path(dst)
    previous = dst.with_name(f"{dst.stem}.partial-previous{dst.suffix}")
    point = read_resume_point(path, settings) if resume and settings is not None else None
    if point is not None:  # continue from a copy; the new partial is written in its place
        os.replace(path, previous)
        point = ResumePoint(previous, point.frames_done)
        log.info("resuming %s: %d frames already done", dst, point.frames_done)
    try:
        if settings is not None:
            write_settings(path, settings)
        yield PartialOutput(path, point)
    except Exception:
        _remove(path)
        if point is not None:  # give the earlier partial back, to resume again
            os.replace(previous, path)
        elif settings is not None:
            remove_settings(path)
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the sink flushed what it had; keep it
        _remove(previous)
        hint = " (continue with --resume)" if settings is not None else ""
        log.warning("stopped: partial output left at %s%s", path, hint)
        raise
    os.replace(path, dst)
    if settings is not None:
        remove_settings(path)
    _remove(previous)


def _remove(path: Path) -> None:
    """Delete ``path`` if it exists."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
