"""``python -m agents.kvm [--config FILE] [flags]``: run the KVM agent until SIGTERM/SIGINT.

Prints ``KVM agent ready on <host>:<port>`` on stdout once it serves (with ``--port 0``,
the port it got).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agents.kvm.agent import KvmAgent, serve
from agents.kvm.config import load_config
from agents.runtime.process import configure_logging, serve_until_signalled


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agents.kvm", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--host", help="bind address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default 7070)")
    parser.add_argument("--libvirt-uri", help="libvirt URI (default qemu:///system)")
    parser.add_argument("--token-file", help="file holding the node's token")
    parser.add_argument("--state-dir", help="where the task journal lives")
    parser.add_argument("--send-command-url", help="the node's report URL")
    return parser.parse_args(argv)


def _ready(agent: KvmAgent) -> None:
    print(f"KVM agent ready on {agent.config.host}:{agent.port}", flush=True)


async def _main(args: argparse.Namespace) -> None:
    config = load_config(
        args.config,
        host=args.host,
        port=args.port,
        libvirt_uri=args.libvirt_uri,
        token_file=args.token_file,
        state_dir=args.state_dir,
        send_command_url=args.send_command_url,
    )
    configure_logging(config.log_level)
    await serve_until_signalled(serve(config, _ready))


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_main(_parse(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
