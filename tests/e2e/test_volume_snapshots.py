"""Volume snapshots over REST with the simulator: live snapshots of a running VM's root
volume, offline ones of a stopped VM's, revert (refused while the VM runs), queries,
delete with descendants (the volume's file folded first), and snapshots going with their
volume. Capacity is checked exactly on the node's books."""

from __future__ import annotations

from typing import Any

from simulator import Simulator
from tests.e2e.test_volumes import attach, found, new_vm, ps_available, volume
from tests.support.api_client import ApiClient
from tests.support.datacenter import GIB, add_full_datacenter


async def snapshot(admin: ApiClient, volume_uuid: str, name: str) -> dict[str, Any]:
    return await admin.inventory(f"/volumes/{volume_uuid}/volume-snapshots", {"name": name})


async def get_snapshot(admin: ApiClient, uuid: str) -> dict[str, Any] | None:
    answer = await admin.request("GET", f"/volume-snapshots/{uuid}")
    assert answer.status == 200, answer.body
    items: list[dict[str, Any]] = answer.body["inventories"]
    return items[0] if items else None


async def revert(admin: ApiClient, uuid: str) -> Any:
    return await admin.action(f"/volume-snapshots/{uuid}/actions", "revertVolumeFromSnapshot", {})


async def vm_action(admin: ApiClient, uuid: str, action: str) -> None:
    answer = await admin.action(f"/vm-instances/{uuid}/actions", action, {})
    assert answer.status == 200, answer.body


async def test_root_volume_snapshots_revert_and_delete(admin: ApiClient, sim: Simulator) -> None:
    ip = "10.62.0.1"
    dc = await add_full_datacenter(admin, "sn", [ip], storage=("local",))
    ps = dc["local"]["uuid"]
    vm = await new_vm(admin, dc, "vm")
    root = await volume(admin, vm["rootVolumeUuid"])
    assert root is not None
    before = await ps_available(admin, ps)
    machine = sim.machine(ip)
    image_size = dc["image"]["size"]

    # Live: the VM runs, its host's KVM agent takes it.
    s1 = await snapshot(admin, root["uuid"], "s1")
    assert (s1["volumeUuid"], s1["volumeType"], s1["latest"]) == (root["uuid"], "Root", True)
    assert s1.get("parentUuid") is None
    assert s1["distance"] == 0
    assert s1["primaryStorageInstallPath"] == root["installPath"]
    assert s1["size"] == image_size
    assert (machine.commands or {}).get("/vm/volume/takesnapshot") == 1
    assert await ps_available(admin, ps) == before - image_size
    moved = await volume(admin, root["uuid"])
    assert moved is not None
    assert moved["installPath"] != root["installPath"]

    refused = await revert(admin, s1["uuid"])
    assert refused.status == 409
    assert refused.error["code"] == "VOLUME.1006"

    # Offline: the VM is stopped, the storage's agent takes it.
    await vm_action(admin, vm["uuid"], "stopVmInstance")
    s2 = await snapshot(admin, root["uuid"], "s2")
    assert (s2["parentUuid"], s2["treeUuid"], s2["distance"]) == (s1["uuid"], s1["treeUuid"], 1)
    assert (machine.commands or {}).get("/localstorage/snapshot/create") == 1
    first = await get_snapshot(admin, s1["uuid"])
    assert first is not None
    assert first["latest"] is False

    reverted = await revert(admin, s1["uuid"])
    assert reverted.status == 200, reverted.body
    latest = {
        s["name"]: s["latest"] for s in (await admin.query("/volume-snapshots")).body["inventories"]
    }
    assert latest == {"s1": True, "s2": False}
    back = await volume(admin, root["uuid"])
    assert back is not None
    assert back["installPath"] not in (
        moved["installPath"],
        root["installPath"],
    )

    assert await found(admin, "/volume-snapshots", f"volumeUuid={root['uuid']}") == {
        s1["uuid"],
        s2["uuid"],
    }
    assert await found(admin, "/volumes", "snapshot.name=s2") == {root["uuid"]}
    assert await found(admin, "/primary-storage", f"volumeSnapshot.uuid={s1['uuid']}") == {ps}
    renamed = await admin.action(
        f"/volume-snapshots/{s2['uuid']}/actions", "updateVolumeSnapshot", {"name": "second"}
    )
    assert renamed.status == 200
    assert renamed.body["inventory"]["name"] == "second"

    # s1 goes with s2 below it; the volume rests on s1, so s1 is folded into it first.
    assert (await admin.delete(f"/volume-snapshots/{s1['uuid']}")).status == 200
    assert await found(admin, "/volume-snapshots", f"volumeUuid={root['uuid']}") == set()
    assert (machine.commands or {}).get("/localstorage/snapshot/offlinemerge") == 1
    assert await ps_available(admin, ps) == before
    assert s1["primaryStorageInstallPath"] not in (machine.local_files or {})

    await vm_action(admin, vm["uuid"], "startVmInstance")


async def test_snapshots_go_with_their_volume(admin: ApiClient, sim: Simulator) -> None:
    ip = "10.62.1.1"
    dc = await add_full_datacenter(admin, "sg", [ip], storage=("nfs",))
    ps = dc["nfs"]["uuid"]
    vm = await new_vm(admin, dc, "vm")
    before = await ps_available(admin, ps)
    data = await admin.inventory("/volumes/data", {"name": "d", "diskSize": 2 * GIB})
    assert (await attach(admin, data["uuid"], vm["uuid"])).status == 200

    live = await snapshot(admin, data["uuid"], "live")
    assert live["type"] == "Hypervisor"
    detached = await admin.delete(f"/volumes/{data['uuid']}/vm-instances")
    assert detached.status == 200, detached.body
    offline = await snapshot(admin, data["uuid"], "offline")
    assert offline["type"] == "Storage"
    assert (sim.machine(ip).commands or {}).get("/nfsprimarystorage/snapshot/create") == 1
    assert await ps_available(admin, ps) == before - 2 * GIB - live["size"] - offline["size"]

    assert (await admin.delete(f"/volumes/{data['uuid']}")).status == 200
    assert await get_snapshot(admin, live["uuid"]) is None
    assert await get_snapshot(admin, offline["uuid"]) is None
    assert await ps_available(admin, ps) == before
