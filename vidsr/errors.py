"""Typed errors. Library code raises these; only the CLI prints them.

Following PyAV, each error also subclasses its builtin twin, so callers can write
``except ValueError`` or ``except vidsr.InputError`` as they prefer.
"""

from __future__ import annotations


class VidsrError(Exception):
    """Base class for every error vidsr raises on purpose."""


class InputError(VidsrError, ValueError):
    """The input file, folder or stream cannot be used (missing, not a video, corrupt...)."""


class OptionError(VidsrError, ValueError):
    """An option value is invalid or inconsistent with another (caught before any work)."""


class ModelError(VidsrError, ValueError):
    """A model name, scale or weights file cannot be used."""


class EncodeError(VidsrError, RuntimeError):
    """The output cannot be written (codec, container, disk full, permissions...)."""


class DeviceError(VidsrError, RuntimeError):
    """The requested compute device is not available."""


class OutputExistsError(VidsrError, FileExistsError):
    """The output path exists and ``overwrite`` was not given."""


class OutputBusyError(EncodeError):
    """Another run is writing the same output (it holds the output's lock)."""


class PartialOutputError(OutputExistsError):
    """An interrupted run's partial output exists and neither ``resume`` nor ``overwrite``
    was given."""


class WorkerError(VidsrError, RuntimeError):
    """A cluster worker was lost while it ran a task (its process or node died), and the
    retries ran out too."""
