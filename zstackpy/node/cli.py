"""``zstackpy``: run a management node, manage its database.

zstackpy run [--host H] [--port N] [--config FILE]
zstackpy db upgrade [--config FILE]
zstackpy db current [--config FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from zstackpy import __version__
from zstackpy.core import eventloop
from zstackpy.core.errors import ZError
from zstackpy.core.settings import NodeSettings, load_settings

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FENCED = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zstackpy",
        description="zstackpy management node. Settings come from flags, ZSTACK_* environment "
        "variables and a TOML settings file, in that order of precedence.",
    )
    parser.add_argument("--version", action="version", version=f"zstackpy {__version__}")
    parser.add_argument("--config", type=Path, help="TOML settings file (or ZSTACK_CONFIG)")
    parser.add_argument("--db-url", help="database URL (or ZSTACK_DB_URL)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a management node until SIGINT/SIGTERM")
    run.add_argument("--host", help="HTTP bind address (or ZSTACK_HTTP_HOST; 127.0.0.1)")
    run.add_argument("--port", type=int, help="HTTP port (or ZSTACK_HTTP_PORT; 8080)")
    run.add_argument("--bus-url", help="amqp:// URL for cluster mode (or ZSTACK_BUS_URL)")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="migrate the database to the newest schema")
    db_commands.add_parser("current", help="print the schema revision and the newest one")
    return parser


def _settings(args: argparse.Namespace) -> NodeSettings:
    return load_settings(
        args.config,
        db_url=args.db_url,
        http_host=getattr(args, "host", None),
        http_port=getattr(args, "port", None),
        bus_url=getattr(args, "bus_url", None),
    )


async def _run(settings: NodeSettings) -> int:
    from zstackpy.core.gc_tuning import tune_after_start
    from zstackpy.node.node import ManagementNode, NodeState

    node = ManagementNode(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.request_stop)
    await node.start()
    # This process's life is the node's: DrainManagementNode may end it, as SIGTERM does.
    node.context.request_stop = node.request_stop
    tune_after_start()
    url = f"http://{settings.http_host}:{node.http.port if node.http else settings.http_port}"
    print(f"zstackpy management node {node.uuid} ready at {url}/health", flush=True)
    await node.wait_stopped()
    await node.drain(settings.drain_timeout)
    await node.stop()
    logging.getLogger(__name__).info("management node %s %s", node.uuid, node.state)
    return EXIT_FENCED if node.state is NodeState.FENCED else EXIT_OK


async def _db(settings: NodeSettings, action: str) -> int:
    from zstackpy.core.db import Database, current_revision, head_revision, upgrade

    if action == "upgrade":
        await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        current = await current_revision(db)
    finally:
        await db.close()
    print(f"schema revision: {current or 'none (empty database)'}; newest: {head_revision()}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        eventloop.loop_factory()  # a bad ZSTACK_EVENT_LOOP is a bad setting too
    except (ValueError, FileNotFoundError) as exc:
        print(f"zstackpy: bad settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "run":
            return eventloop.run(_run(settings))
        return eventloop.run(_db(settings, args.db_command))
    except ZError as exc:
        print(f"zstackpy: {exc.code}: {exc.description}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
