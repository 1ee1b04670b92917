"""zstack-cli one-shot start-up: wall time of whole commands as a user runs them, beside
the interpreter's own start-up (``python -c pass`` from the same virtual environment),
measured in the same run.

Starts an embedded node (``zstackpy run --port 0`` on a fresh SQLite file in a temporary
directory), logs the CLI in and creates one zone, warms the CLI's action cache, then times
``--runs`` runs of each command in turn (medians and 90th percentiles, milliseconds).
Commands run one at a time; the node is idle between them. Prints one JSON line.
Usage: ``python benchmarks/bench_cli_startup.py [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CLI = str(BIN / "zstack-cli")
PASSWORD = "bench-admin-pw"
_READY = re.compile(r"ready at http://[^:]+:(\d+)/health")


def start_node(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZSTACK_")}
    env |= {"ZSTACK_DATA_DIR": str(data_dir), "ZSTACK_ADMIN_PASSWORD": PASSWORD}
    subprocess.run(
        [str(BIN / "zstackpy"), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    log = (data_dir / "node.log").open("w")
    node = subprocess.Popen(
        [str(BIN / "zstackpy"), "run", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert node.stdout is not None
    for line in node.stdout:
        found = _READY.search(line)
        if found:
            return node, int(found.group(1))
    raise SystemExit(f"the node did not start; see {data_dir / 'node.log'}")


def timed(argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        node, port = start_node(root)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("ZSTACK_")}
            env |= {
                "XDG_CONFIG_HOME": str(root / "config"),
                "XDG_CACHE_HOME": str(root / "cache"),
                "XDG_STATE_HOME": str(root / "state"),
                "ZSTACK_CLI_PORT": str(port),
            }
            for setup in (
                ["LogInByAccount", "accountName=admin", f"password={PASSWORD}"],
                ["CreateZone", "name=bench-zone"],  # a row to print; warms the action cache
            ):
                subprocess.run([CLI, *setup], env=env, check=True, stdout=subprocess.DEVNULL)
            results = {
                "python -c pass": timed([sys.executable, "-c", "pass"], env, args.runs),
                "zstack-cli --help": timed([CLI, "--help"], env, args.runs),
                "zstack-cli QueryZone -o json": timed(
                    [CLI, "QueryZone", "-o", "json"], env, args.runs
                ),
                "zstack-cli QueryZone (table)": timed([CLI, "QueryZone"], env, args.runs),
            }
        finally:
            node.terminate()
            node.wait(15)
    print(json.dumps({"bench": "cli_startup", "runs": args.runs, "results": results}))


if __name__ == "__main__":
    main()
