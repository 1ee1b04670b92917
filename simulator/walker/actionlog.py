"""The action log: one JSON object a line, so a walk of hours stays greppable and a
crash loses at most the line being written.

    {"walker": 1, "seed": 7, "config": {...}}            the header
    {"example": 0, "steps": 0}                           a walk on an emptied cloud begins
    {"example": 0, "step": {"op": "create", "host": 1}}  each action, in order
    {"example": 3, "failure": "api-model: ..."}          how an example failed

Hypothesis runs many examples (walks) on one node, emptying the cloud between them; the
last failing example of a run is the shrunk one. ``Log.example(n)`` reads one back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from simulator.walker.cloud import WalkConfig
from simulator.walker.steps import Step

FORMAT = 1


@dataclass
class Log:
    """A log as read back: the header, and each example's steps and failure."""

    seed: int | None
    config: WalkConfig
    steps: dict[int, list[Step]] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)

    @property
    def last_failure(self) -> int | None:
        """The example Hypothesis ran last among the failing ones: the shrunk one."""
        return max(self.failures) if self.failures else None

    @classmethod
    def read(cls, path: Path) -> Log:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not lines or lines[0].get("walker") != FORMAT:
            raise ValueError(f"{path}: not a walker action log (format {FORMAT})")
        header = lines[0]
        log = cls(header.get("seed"), WalkConfig.from_json(header.get("config", {})))
        for line in lines[1:]:
            example = int(line["example"])
            steps = log.steps.setdefault(example, [])
            if "step" in line:
                steps.append(Step.from_json(line["step"]))
            if "failure" in line:
                log.failures[example] = str(line["failure"])
        return log


class LogWriter:
    """Appends to an action log as the walk goes; every line is flushed at once."""

    def __init__(self, path: Path, seed: int | None, config: WalkConfig) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("w")
        self.example = -1
        self._line({"walker": FORMAT, "seed": seed, "config": config.to_json()})

    def _line(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._file.flush()

    def begin(self) -> None:
        self.example += 1
        self._line({"example": self.example, "steps": 0})

    def step(self, step: Step) -> None:
        self._line({"example": self.example, "step": step.to_json()})

    def failure(self, text: str) -> None:
        self._line({"example": self.example, "failure": text})

    def close(self) -> None:
        self._file.close()


def write_minimal(
    path: Path, seed: int | None, config: WalkConfig, steps: list[Step], failure: str
) -> None:
    """A log of one example: what a regression test replays."""
    writer = LogWriter(path, seed, config)
    writer.begin()
    for step in steps:
        writer.step(step)
    writer.failure(failure)
    writer.close()
