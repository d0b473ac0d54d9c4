"""The output file of a run: checked before any work, locked, written under a temporary name.

A video is written to ``out.partial.mp4`` and renamed to ``out.mp4`` only once complete
(:func:`partial_output`), so a finished name is always a finished file. MP4 and MOV are
written fragmented, so that even a hard-killed run leaves its finished GOPs readable, and
remuxed into a regular file at publish. A run holds an exclusive lock
(``out.partial.mp4.lock``, an ``flock`` that dies with its process) for as long as it owns
the output, so a second run on the same output refuses at once. A failed run removes its
partial file (or gives back the one it resumed from); an interrupted one (Ctrl-C,
SIGTERM, kill -9) keeps it for ``--resume``; a later run without ``--resume`` or
``--overwrite`` refuses to touch it.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vidsr.errors import EncodeError, OutputBusyError, OutputExistsError, PartialOutputError
from vidsr.media.resume import (
    ResumePoint,
    finished_frames,
    read_resume_point,
    remove_settings,
    settings_path,
    write_settings,
)
from vidsr.media.sinks import is_fragmented, remux_fragmented

log = logging.getLogger(__name__)


def partial_path(dst: Path) -> Path:
    """The temporary name written to until the output is complete: ``out.partial.mp4``."""
    return dst.with_name(f"{dst.stem}.partial{dst.suffix}")


def _previous_path(dst: Path) -> Path:
    """Where a resumed run moves the earlier partial output it copies from."""
    return dst.with_name(f"{dst.stem}.partial-previous{dst.suffix}")


def _final_path(dst: Path) -> Path:
    """Where a fragmented partial output is remuxed to before it is renamed to ``dst``."""
    return dst.with_name(f"{dst.stem}.partial-final{dst.suffix}")


def lock_path(dst: Path) -> Path:
    """The lock file a run holds while it owns output ``dst``."""
    partial = partial_path(dst)
    return partial.with_name(partial.name + ".lock")


def _temporary_paths(dst: Path) -> tuple[Path, ...]:
    partial = partial_path(dst)
    return (partial, _previous_path(dst), _final_path(dst), settings_path(partial), lock_path(dst))


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Fail early on output problems: exists, same as input, folder missing or read-only,
    a temporary name too long for the file system or taken by a folder."""
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
    _check_temporary_names(dst)


def _check_temporary_names(dst: Path) -> None:
    """Every temporary name of ``dst`` fits the file system and is not a folder."""
    try:
        limit = os.pathconf(dst.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for path in _temporary_paths(dst):
        if len(os.fsencode(path.name)) > limit:
            raise EncodeError(
                f"output name too long: vidsr first writes it as {path.name} "
                f"({len(os.fsencode(path.name))} bytes; this file system takes {limit}); "
                f"choose a shorter name"
            )
        if path.is_dir():
            raise EncodeError(
                f"a folder is in the way of the output's temporary file: {path} "
                f"(move it, or choose another output name)"
            )


def _cannot(action: str, path: Path, e: OSError) -> EncodeError:
    """One line for a failed file operation: ``cannot create X: No space left on device``."""
    return EncodeError(f"cannot {action} {path}: {e.strerror or e}")


@contextmanager
def _output_lock(dst: Path) -> Iterator[None]:
    """Hold the exclusive lock of output ``dst``; refuse at once if another run holds it.

    The lock file is removed on release. A run that opened it just before then would lock
    a file no longer in place: it checks that the locked file is still the one at the
    name, and takes the new one otherwise.

    Raises:
        OutputBusyError: another run (this process or another) writes ``dst``.
        EncodeError: the lock file cannot be created (read-only, full or odd file system).
    """
    lock = lock_path(dst)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _cannot("create", lock, e) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise _cannot("lock", lock, e) from e
            raise OutputBusyError(
                f"another vidsr run is writing {dst} (it holds {lock.name}); "
                f"wait for it to finish, or choose another output"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _check_earlier(dst: Path, resumable: bool, resume: bool, overwrite: bool) -> None:
    """Refuse to replace an interrupted run's partial output unless asked to: ``--resume``
    continues it (when the run can resume), ``--overwrite`` removes it."""
    partial, previous = partial_path(dst), _previous_path(dst)
    earlier = [p for p in (partial, previous) if p.exists()]
    if not earlier or (resume and resumable):
        return
    if not overwrite:
        hint = (
            "add --resume to continue or --overwrite to start again"
            if resumable
            else "add --overwrite to start again (this run cannot resume it)"
        )
        raise PartialOutputError(
            f"a partial output from an interrupted run exists: {earlier[0]}: {hint}"
        )
    log.info("removing the partial output of an interrupted run: %s", earlier[0])
    for path in (partial, previous, settings_path(partial)):
        _remove(path)


def _recover_previous(dst: Path) -> None:
    """A resumed run that was hard-killed leaves two partial outputs: the earlier one (moved
    aside) and its own. Keep the one with more finished frames under the partial name."""
    partial, previous = partial_path(dst), _previous_path(dst)
    if not previous.exists():
        return
    if not partial.exists() or finished_frames(previous) >= finished_frames(partial):
        os.replace(previous, partial)
    else:
        _remove(previous)


@dataclass(frozen=True)
class PartialOutput:
    """Where to write: ``path`` (the ``.partial`` name) and, when resuming, the earlier
    partial output to continue from (moved aside to ``.partial-previous``)."""

    path: Path
    resume_from: ResumePoint | None = None


@contextmanager
def partial_output(
    dst: Path, settings: dict | None = None, *, resume: bool = False, overwrite: bool = False
) -> Iterator[PartialOutput]:
    """Own the partial file of output ``dst`` for the ``with`` block that writes it.

    Args:
        dst: the final output path.
        settings: the run's settings (:func:`~vidsr.media.resume.run_settings`), recorded
            beside the partial file so a later ``--resume`` can check them; ``None`` for
            outputs that cannot be resumed.
        resume: continue an earlier partial output written with the same ``settings``,
            when there is one (it is moved aside and read from; see ``resume_from``).
        overwrite: remove an earlier partial output instead of refusing to start.

    Entering the block takes the output's lock and checks for an earlier partial output.
    On leaving it: success publishes the file under ``dst`` (remuxing a fragmented MP4/MOV)
    and drops the settings record and the earlier partial; an ``Exception`` removes the
    partial file and gives back the earlier one, if resuming, to resume again; a
    ``BaseException`` such as ``KeyboardInterrupt`` keeps the partial file (the sink has
    flushed it). The exception always propagates; the lock is released in every case.

    Raises:
        OutputBusyError: another run writes ``dst``.
        PartialOutputError: an interrupted run's partial output exists and neither
            ``resume`` (for a resumable run) nor ``overwrite`` is given.
        EncodeError: a temporary file cannot be written, or the finished one published.
    """
    _check_temporary_names(dst)
    with _output_lock(dst):
        _check_earlier(dst, settings is not None, resume, overwrite)
        path, previous = partial_path(dst), _previous_path(dst)
        point = None
        if resume and settings is not None:
            _recover_previous(dst)
            point = read_resume_point(path, settings)
        if point is not None:  # continue from a copy; the new partial is written in its place
            os.replace(path, previous)
            point = ResumePoint(previous, point.frames_done)
            log.info("resuming %s: %d frames already done", dst, point.frames_done)
        try:
            if settings is not None:
                _write_settings(path, settings)
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
        _remove(previous)
        _publish(path, dst, keep_on_failure=settings is not None)
        if settings is not None:
            remove_settings(path)


def _write_settings(partial: Path, settings: dict) -> None:
    try:
        write_settings(partial, settings)
    except OSError as e:
        remove_settings(partial)  # not a 0-byte record left behind
        raise _cannot("write", settings_path(partial), e) from e


def publish(path: Path, dst: Path) -> None:
    """Give the finished ``path`` its name ``dst``, as a regular file (a fragmented MP4/MOV
    is remuxed first). On failure ``path`` is kept and the error names it.

    Raises:
        EncodeError.
    """
    _publish(path, dst, keep_on_failure=True, hint="(it plays as it is: a fragmented file)")


def _publish(
    path: Path,
    dst: Path,
    *,
    keep_on_failure: bool,
    hint: str = "(make room, then run again with --resume to publish it)",
) -> None:
    """Rename the finished ``path`` to ``dst``, remuxing a fragmented one first. If that
    fails, a resumable run keeps ``path`` (complete) for ``--resume`` to publish later."""
    final = _final_path(dst)
    try:
        if is_fragmented(path):
            remux_fragmented(path, final)
            os.replace(final, dst)
            _remove(path)
        else:
            os.replace(path, dst)
    except (EncodeError, OSError) as e:
        _remove(final)
        error = e if isinstance(e, EncodeError) else _cannot("write", dst, e)
        if not keep_on_failure:
            _remove(path)
            raise error from e
        raise EncodeError(f"{error}; the finished video is kept at {path} {hint}") from e


def _remove(path: Path) -> None:
    """Delete ``path`` if it exists."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
