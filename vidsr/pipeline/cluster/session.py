"""Importing Ray and connecting to a cluster: a local one bound to localhost, or the user's.

A local instance must not listen on the machine's network addresses, and Ray's own
default is the opposite (it advertises and binds the node's routable IP). Ray keeps to the
loopback address when ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is off, a switch it reads when
it is imported and which the node processes it starts inherit. :func:`start_local` sets
it for the start, with usage statistics off (``RAY_USAGE_STATS_ENABLED=0``: nothing is
sent anywhere), and then checks that the node it started has the address ``127.0.0.1``.
"""

from __future__ import annotations

import os
import socket
from types import ModuleType
from typing import Any

from vidsr.errors import OptionError

INSTALL_HINT = '--cluster needs Ray: pip install "vidsr[ray]"'
LOCALHOST = "127.0.0.1"
# What a local instance's processes (and this one's Ray) need in their environment.
LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# Ray's default ports: the head's GCS (``ray start --head``) and the Ray Client server.
GCS_PORT = 6379
CLIENT_PORT = 10001
CONNECT_TIMEOUT_S = 3.0


def import_ray() -> ModuleType:
    """``import ray``, or the one-line :class:`OptionError` saying what to install."""
    try:
        import ray
    except ImportError:
        raise OptionError(INSTALL_HINT) from None
    return ray


def start_local(num_cpus: int | None = None, **init_options: Any) -> None:
    """Start a new Ray instance in this process, bound to ``127.0.0.1``, without
    dashboard; ``num_cpus`` cores for its workers (default: all of this machine's).
    ``init_options`` go to ``ray.init``.

    Raises:
        OptionError: Ray is missing, or the instance did not come up on localhost (it is
            shut down again).
    """
    saved = {name: os.environ.get(name) for name in LOCAL_ENV}
    os.environ.update(LOCAL_ENV)  # for the node processes ray.init starts, and for Ray
    try:
        ray = import_ray()
        # Ray read the switch when it was imported, maybe before it was set here.
        constants = ray._private.ray_constants
        previous, constants.ENABLE_RAY_CLUSTER = constants.ENABLE_RAY_CLUSTER, False
        try:
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address=LOCALHOST,
                **init_options,
            )
        finally:
            constants.ENABLE_RAY_CLUSTER = previous
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    addresses = {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
    if addresses != {LOCALHOST}:
        ray.shutdown()
        raise OptionError(f"the local Ray instance did not bind to {LOCALHOST}: {addresses}")


def connect(address: str, num_cpus: int | None = None) -> bool:
    """Make sure this process is connected to a Ray cluster: ``auto`` joins the cluster
    ``RAY_ADDRESS`` names, where set, else starts a local one (:func:`start_local`,
    ``num_cpus`` cores); any other ``address`` (``HOST:PORT`` of a ``ray start --head``,
    or ``ray://HOST:PORT``) joins that cluster. (Ray's own ``auto`` would join any Ray
    process found running on the machine, someone else's included.)

    Returns:
        Whether this call connected (so the caller shuts the connection, and a local
        instance it started, down when done); ``False`` when Ray was already initialised.

    Raises:
        OptionError: Ray is missing or the cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
    if not address:
        start_local(num_cpus, log_to_driver=False)
        return True
    check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise OptionError(f"--cluster {address}: cannot join the Ray cluster: {first}") from None
    return True


def split_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Ray address: ``HOST:PORT``, ``HOST`` (port 6379, the head's
    default), ``ray://HOST[:PORT]`` (port 10001, Ray Client's default); ``[::1]:PORT``
    for IPv6.

    Raises:
        OptionError: the port is not a number.
    """
    rest, default = address, GCS_PORT
    if rest.startswith("ray://"):
        rest, default = rest[len("ray://") :], CLIENT_PORT
    rest = rest.rstrip("/")
    if rest.startswith("["):  # [v6]:port
        host, _, tail = rest[1:].partition("]")
        port = tail.removeprefix(":")
    elif rest.count(":") == 1:
        host, _, port = rest.partition(":")
    else:  # a bare host (or a bare IPv6 address)
        host, port = rest, ""
    if not port:
        return host, default
    if not port.isdigit():
        raise OptionError(f"--cluster {address}: the port must be a number, got {port!r}")
    return host, int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, in one line, when nothing answers at a Ray address (Ray itself would
    log warnings and retry for half a minute or more): a TCP connect to its host and port.

    Raises:
        OptionError: the address is malformed, its host unknown, or nothing accepts a
            connection there within ``timeout`` seconds.
    """
    host, port = split_address(address)
    if not host:
        raise OptionError(f"--cluster {address}: no host in the address")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if isinstance(error, TimeoutError | socket.timeout):
            reason = f"no answer in {timeout:g} s"
        raise OptionError(
            f"--cluster {address}: nothing answers at {host}:{port} ({reason}); "
            "start the head there with `ray start --head`, or use --cluster auto"
        ) from None
