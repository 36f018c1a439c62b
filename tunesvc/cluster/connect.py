"""Ray addresses as users give them, checked before Ray is asked to use them.

Ray has two kinds: a cluster's GCS address (`HEAD:6379`, or `ray://HEAD:10001`), which
`tunesvc tune` joins, and its dashboard URL (`http://HEAD:8265`), which the jobs API
(`tunesvc submit`, `tunesvc jobs`) talks to. Both often come from RAY_ADDRESS, so the wrong
one is easy to give; and Ray waits minutes on an address nobody answers. Each problem here
is one line naming the address, where it came from, and what to give instead.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from tunesvc.errors import UserError

ADDRESS_ENV = "RAY_ADDRESS"
CONNECT_TIMEOUT_SEC = 5.0


def given(address: str | None) -> tuple[str, str] | None:
    """(address, where it came from) from the option, else RAY_ADDRESS, else None."""
    if address:
        return address, "--address"
    from_env = os.environ.get(ADDRESS_ENV)
    return (from_env, ADDRESS_ENV) if from_env else None


def check_cluster_address(address: str, source: str) -> None:
    """UserError unless `address` is a GCS address that answers (or 'auto')."""
    if address == "auto":
        return
    scheme = urlsplit(address).scheme if "://" in address else ""
    if scheme in ("http", "https"):
        raise UserError(
            f"{source}={address} is a Ray dashboard URL (what `tunesvc jobs` uses); "
            "`tunesvc tune` joins a cluster at its GCS address, such as HEAD:6379 "
            f"(`--address HEAD:6379`), or tunes on a local Ray when {ADDRESS_ENV} is unset")
    if scheme not in ("", "ray"):
        raise UserError(f"{source}={address} is not a Ray address: use HEAD:6379 or "
                        "ray://HEAD:10001")
    _check_answers(address.split("://", 1)[-1], address, source)


def check_dashboard_address(address: str, source: str) -> None:
    """UserError unless `address` looks like a dashboard URL (http://HEAD:8265)."""
    if urlsplit(address).scheme in ("http", "https"):
        return
    raise UserError(f"{source}={address} is not a Ray dashboard URL: the jobs API needs "
                    "http://HEAD:8265 (the cluster's GCS address, HEAD:6379, is for "
                    "`tunesvc tune`)")


def _check_answers(host_port: str, address: str, source: str) -> None:
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"{source}={address} is not a Ray address: expected HOST:PORT, "
                        "such as HEAD:6379")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SEC).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot reach the Ray cluster at {address} (from {source}): "
                        f"{reason}") from None
