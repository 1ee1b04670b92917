"""A failure at any step of CreateVmInstance (``flows/vm-create.yaml``) leaves the data
center exactly as it was: host capacity, primary storage capacity, addresses, volumes; no
VM row, no NIC, nothing on the simulated machines. Failures are injected where they
happen in real life: the simulated agents (faults on ``/vm/start`` and on the storage
commands), exhausted capacity, a full L3 network, bad requests."""

from __future__ import annotations

from typing import Any

import pytest

from simulator import Simulator
from tests.e2e.test_vm_lifecycle import (
    books,
    create_vm,
    error_of,
    get_vm,
    machine_vms,
    new_vm,
    vm_action,
    warm_image_cache,
)
from tests.support.api_client import ApiClient
from tests.support.datacenter import GIB, add_full_datacenter
from zstackpy.core.errors import ZError
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.vm.extensions import VmBeforeStartExtension, VmStartEvent

HOST_IPS = ["10.61.0.1", "10.61.0.2"]
TIB = 1024**4


class _RefuseSomeStarts:
    """A VmBeforeStartExtension as another plugin would write one."""

    async def before_vm_start(self, event: VmStartEvent) -> None:
        if event.spec.name.startswith("refused"):
            raise ZError("TEST.1001", f"{event.spec.name} may not start", isNew=event.is_new)


class _TestPlugin:
    name = "vm-start-guard"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(VmBeforeStartExtension, _RefuseSomeStarts())


start_guard_plugin = _TestPlugin()


@pytest.fixture
def node_overrides() -> dict[str, object]:
    return {"plugins": [f"{__name__}:start_guard_plugin"]}


@pytest.fixture
async def dc(admin: ApiClient) -> dict[str, Any]:
    made = await add_full_datacenter(admin, "rb", HOST_IPS, storage=("local",))
    await warm_image_cache(admin, made)
    return made


async def _fails_cleanly(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any], code: str, **params: Any
) -> dict[str, Any]:
    before = await books(admin)
    running = {ip: machine_vms(sim, ip) for ip in HOST_IPS}
    name = params.pop("name", "doomed")
    answer = await create_vm(admin, dc, name, **params)
    error = error_of(answer, code)
    assert await books(admin) == before
    assert {ip: machine_vms(sim, ip) for ip in HOST_IPS} == running
    return error


async def test_agent_refuses_to_start(admin: ApiClient, sim: Simulator, dc: dict[str, Any]) -> None:
    for ip in HOST_IPS:
        sim.set_fault(ip, "/vm/start", fail="qemu: could not open disk")
    error = await _fails_cleanly(admin, sim, dc, "AGENT.1003")
    assert "could not open disk" in str(error)


async def test_storage_fails_making_the_root_volume(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    for ip in HOST_IPS:
        sim.set_fault(ip, "/localstorage/volume/createvolumefromcache", fail="disk full")
    await _fails_cleanly(admin, sim, dc, "AGENT.1003")


async def test_storage_fails_making_a_data_volume(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    for ip in HOST_IPS:
        sim.set_fault(ip, "/localstorage/volume/createempty", fail="disk full")
    await _fails_cleanly(
        admin, sim, dc, "AGENT.1003", dataDiskOfferingUuids=[dc["disk_offering"]["uuid"]]
    )


async def test_no_host_has_the_capacity(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    await _fails_cleanly(
        admin, sim, dc, "HOST.1101", instanceOfferingUuid=None, cpuNum=1, memorySize=TIB
    )


async def test_the_l3_network_is_full(admin: ApiClient, sim: Simulator, dc: dict[str, Any]) -> None:
    l3 = await admin.inventory(
        "/l3-networks", {"name": "tiny", "l2NetworkUuid": dc["l2"]["uuid"], "category": "Private"}
    )
    await admin.inventory(
        f"/l3-networks/{l3['uuid']}/ip-ranges",
        {
            "name": "one",
            "startIp": "172.20.0.10",
            "endIp": "172.20.0.10",
            "netmask": "255.255.255.0",
            "gateway": "172.20.0.1",
        },
    )
    first = await new_vm(admin, dc, "first", l3NetworkUuids=[l3["uuid"]])
    assert first["vmNics"][0]["ip"] == "172.20.0.10"
    # Two NICs: the first address comes, the second L3 is full; both are undone.
    await _fails_cleanly(
        admin,
        sim,
        dc,
        "L3.1005",
        l3NetworkUuids=[dc["l3"]["uuid"], l3["uuid"]],
        dataDiskOfferingUuids=[dc["disk_offering"]["uuid"]],
    )


async def test_bad_requests_change_nothing(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    await _fails_cleanly(admin, sim, dc, "VM.1002", instanceOfferingUuid=None)
    await _fails_cleanly(admin, sim, dc, "VM.1002", cpuNum=1, memorySize=GIB)
    await _fails_cleanly(admin, sim, dc, "SYS.1003", imageUuid="0" * 32)
    await _fails_cleanly(admin, sim, dc, "SYS.1003", l3NetworkUuids=["0" * 32])
    await _fails_cleanly(admin, sim, dc, "VM.1002", defaultL3NetworkUuid="1" * 32)
    await _fails_cleanly(admin, sim, dc, "SYS.1007", systemTags=["hostname::-bad-"])
    disabled = await admin.inventory(
        "/instance-offerings", {"name": "off", "cpuNum": 1, "memorySize": GIB}
    )
    changed = await admin.action(
        f"/instance-offerings/{disabled['uuid']}/actions",
        "changeInstanceOfferingState",
        {"stateEvent": "disable"},
    )
    assert changed.status == 200, changed.body
    await _fails_cleanly(admin, sim, dc, "VM.1003", instanceOfferingUuid=disabled["uuid"])


async def test_a_resource_uuid_in_use_is_refused(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    vm = await new_vm(admin, dc, "taken")
    error = await _fails_cleanly(admin, sim, dc, "SYS.1002", resourceUuid=vm["uuid"])
    assert vm["uuid"] in error["description"]


async def test_a_before_start_hook_refuses(
    admin: ApiClient, sim: Simulator, dc: dict[str, Any]
) -> None:
    error = await _fails_cleanly(admin, sim, dc, "TEST.1001", name="refused-new")
    assert error["details"]["isNew"] is True
    vm = await new_vm(admin, dc, "refused-later", strategy="CreateStopped")
    answer = await vm_action(admin, vm["uuid"], "startVmInstance")
    assert answer.error["details"]["isNew"] is False
    after = await get_vm(admin, vm["uuid"])
    assert after is not None
    assert after["state"] == "Stopped"
