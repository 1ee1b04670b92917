"""Suite-wide fixtures: blocking calls on the event loop fail the test that makes them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    # Only the product's own frames count: a test may write its fixture files directly.
    with blockbuster_ctx(["zstackpy", "agents", "simulator"]) as bb:
        # SQLAlchemy resolves a SQLite file path once, when the engine is created.
        bb.functions["os.path.abspath"].can_block_in(
            "sqlalchemy/dialects/sqlite/pysqlite.py", "create_connect_args"
        )
        yield bb
