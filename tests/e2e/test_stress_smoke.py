"""``zstack-stress --smoke`` as an operator runs it: it starts a simulator and an embedded
node, builds 10 hosts and creates 300 VMs over REST, and must end without an error, with
the node's ``/metrics`` counting exactly the work done."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from tests.support.processes import REPO, node_env

SMOKE_HOSTS, SMOKE_VMS = 10, 300


@pytest.mark.timeout(180)
async def test_stress_smoke_creates_every_vm_and_metrics_agree() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.stress", "--smoke", "--plain",
        env=node_env(), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 170)
    progress = err.decode()
    assert proc.returncode == 0, progress[-3000:]
    summary = json.loads(out)
    assert summary["errors"] == {}
    assert summary["hosts"]["added"] == SMOKE_HOSTS
    assert summary["vms"]["created"] == SMOKE_VMS
    checks = summary["metrics"]["checks"]
    assert checks["CreateVmInstance succeeded"]["reported"] == SMOKE_VMS
    assert checks["VMs Running"]["reported"] == SMOKE_VMS
    assert checks["vm-create chains succeeded"]["reported"] == SMOKE_VMS
    assert checks["hosts Connected"]["reported"] == SMOKE_HOSTS
    assert checks["AddKVMHost succeeded"]["reported"] == SMOKE_HOSTS
    assert summary["api_latency"]["create_vm_job"]["count"] == SMOKE_VMS
    assert summary["api_latency"]["create_vm_job"]["p50_ms"] > 0
    assert summary["node_process"]["rss_mib"] > 0
    assert summary["node_process"]["cpu_ms_per_vm"] > 0
    assert set(summary["phases_s"]) == {"start", "datacenter", "hosts", "vms", "verify"}
    # Live progress went to stderr, with a rate and an ETA.
    assert f"vms: {SMOKE_VMS}/{SMOKE_VMS} (0 errors)" in progress
    assert "/s" in progress
    assert "ETA" in progress
