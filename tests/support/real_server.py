"""Reaching the real MariaDB and RabbitMQ from tests.

Under CI=true (or ZSTACK_TEST_REAL=1) a real-server test whose server cannot be reached
fails; elsewhere it is skipped with the reason, so a laptop without the servers still runs
the rest of the suite.
"""

from __future__ import annotations

import os
import socket

import pytest

MARIADB_URL = os.environ.get("ZSTACK_TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306/test")
RABBITMQ_URL = os.environ.get("ZSTACK_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def real_servers_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("ZSTACK_TEST_REAL") == "1"


def require_server(name: str, host: str, port: int) -> None:
    """Fail (CI) or skip (elsewhere) unless ``host:port`` accepts a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        reason = f"{name} at {host}:{port} is unreachable: {exc}"
        if real_servers_required():
            pytest.fail(f"{reason} (real-server tests must run when CI=true)")
        pytest.skip(reason)
