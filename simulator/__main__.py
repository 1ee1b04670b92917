"""``python -m simulator --host 127.0.0.1 --port 8090``: run a simulator until SIGTERM/SIGINT.

Prints ``simulator ready at http://<host>:<port>`` on stderr once it listens (``--port 0``
picks a free port; read it from that line).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from simulator.simulator import Simulator
from zstackpy.core import eventloop

log = logging.getLogger("simulator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Simulated ZStack agents over loopback HTTP."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port (0: any free one)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING...")
    return parser.parse_args(argv)


async def serve(host: str, port: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    simulator = Simulator()
    await simulator.start(host, port)
    try:
        log.info("simulator ready at %s", simulator.base_url)
        await stopping.wait()
        log.info("simulator stopping")
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    eventloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
