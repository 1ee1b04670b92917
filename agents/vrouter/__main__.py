"""``python -m agents.vrouter [--config FILE] [flags]``: run the appliance agent until
SIGTERM/SIGINT. Prints ``virtual-router agent ready on <host>:<port>`` once it serves."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agents.runtime.process import configure_logging, serve_until_signalled
from agents.vrouter.agent import RouterAgent, serve
from agents.vrouter.config import load_config


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agents.vrouter", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--host", help="bind address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default 7272)")
    parser.add_argument("--token-file", help="file holding the router's token")
    parser.add_argument("--state-dir", help="where the kept state and task journal live")
    parser.add_argument("--netns", help="network namespace to apply everything in")
    return parser.parse_args(argv)


def _ready(agent: RouterAgent) -> None:
    print(f"virtual-router agent ready on {agent.config.host}:{agent.port}", flush=True)


async def _main(args: argparse.Namespace) -> None:
    config = load_config(
        args.config,
        host=args.host,
        port=args.port,
        token_file=args.token_file,
        state_dir=args.state_dir,
        netns=args.netns,
    )
    configure_logging(config.log_level)
    await serve_until_signalled(serve(config, _ready))


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_main(_parse(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
