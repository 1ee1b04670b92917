"""Optional: a real domain boots under QEMU through the KVM agent.

Runs where libvirt's QEMU driver answers at ``qemu:///session`` (a QEMU binary, libvirt's
QEMU driver and a session daemon installed); elsewhere it is skipped with the reason,
CI included: the test suite's machines have no QEMU, and libvirt's test driver covers the
agent's behaviour (tests/e2e/test_kvm_agent.py). Full emulation (domain type ``qemu``)
is used when /dev/kvm is missing. The guest has an empty disk: booting means QEMU runs it
(the firmware then waits for a boot device), which is what is checked.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.kvm_agent import KvmAgentProcess, prefix_paths, random_loopback

URI = "qemu:///session"


def _qemu_session_error() -> str | None:
    try:
        import libvirt

        conn = libvirt.open(URI)
    except Exception as exc:
        return f"{URI} is not available here: {exc}"
    conn.close()
    return None


async def test_a_real_domain_boots_under_qemu(tmp_path: Path) -> None:
    error = await asyncio.to_thread(_qemu_session_error)
    if error is not None:
        pytest.skip(error)
    agent = KvmAgentProcess(random_loopback(), tmp_path / "host", tmp_path / "agent.log", URI)
    token_file, _ = prefix_paths(agent.prefix)
    token_file.parent.mkdir(parents=True)
    token_file.write_text("qemu-test-token")
    await agent.start()
    results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def callback(request: web.Request) -> web.Response:
        await results.put(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/cb", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    callback_url = f"http://127.0.0.1:{runner.addresses[0][1]}/cb"
    vm = uuid.uuid4().hex
    disk = str(tmp_path / "disks" / "root.qcow2")
    try:
        async with aiohttp.ClientSession() as http:

            async def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
                headers = {
                    "Authorization": "Bearer qemu-test-token",
                    "taskuuid": uuid.uuid4().hex,
                    "callbackurl": callback_url,
                }
                async with http.post(agent.base_url + path, json=body, headers=headers) as r:
                    assert r.status == 200
                async with asyncio.timeout(60):
                    return await results.get()

            made = await call(
                "/localstorage/volume/createempty", {"installUrl": disk, "size": 1 << 26}
            )
            assert made["success"], made
            started = await call(
                "/vm/start",
                {
                    "vmInstanceUuid": vm,
                    "memory": 64 << 20,
                    "cpuNum": 1,
                    "rootVolume": {"installPath": disk, "deviceId": 0, "format": "qcow2"},
                    "nics": [],
                },
            )
            assert started["success"], started
            states = await call("/vm/checkstate", {"vmUuids": [vm]})
            assert states["states"] == {vm: "Running"}
            stopped = await call("/vm/stop", {"uuid": vm, "type": "cold"})
            assert stopped["success"], stopped
    finally:
        await runner.cleanup()
        await agent.stop()
