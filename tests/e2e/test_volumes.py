"""Volumes end to end with the simulator: root and data volumes of VMs over the bus (the
VM service's contract), data volumes over REST, and storage that is in use refusing to be
detached. Capacity is checked exactly on the node's books and on the simulated disks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from simulator import Simulator
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_datacenter, add_full_datacenter, set_global_config
from zstackpy.core.bus.message import Reply
from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode
from zstackpy.services.volume.messages import (
    CreateDataVolumeForVmMsg,
    CreateRootVolumeMsg,
    DeleteVolumeMsg,
    ListVmVolumesMsg,
    ListVmVolumesReply,
    VolumeReply,
)
from zstackpy.services.volume.models import ImageCacheVO

GIB = 1024**3
IMAGE_SIZE = 2 * GIB
BS_HOST = "10.60.1.1"


@dataclass
class Dc:
    zone: str
    cluster: str
    hosts: list[str]
    host_ips: list[str]
    local: str
    nfs: str
    image: str
    bs: str


async def _post(admin: ApiClient, path: str) -> dict[str, Any]:
    answer = await admin.finish(await admin.request("POST", path, json={"params": {}}))
    assert answer.status == 200, answer.body
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def build(admin: ApiClient, prefix: str, host_ips: list[str]) -> Dc:
    """Zone, cluster, hosts, local + NFS primary storage, SFTP backup storage, an image."""
    zone, cluster, hosts = await add_datacenter(admin, prefix, host_ips)
    z, c = zone["uuid"], cluster["uuid"]
    local = await admin.inventory(
        "/primary-storage/local-storage", {"name": "local", "url": "/zstack_ps", "zoneUuid": z}
    )
    nfs = await admin.inventory(
        "/primary-storage/nfs", {"name": "nfs", "url": f"nfs.{prefix}:/share", "zoneUuid": z}
    )
    for ps in (local, nfs):
        await _post(admin, f"/clusters/{c}/primary-storage/{ps['uuid']}")
    bs = await admin.inventory(
        "/backup-storage/sftp",
        {"name": "bs", "url": "/bs", "hostname": BS_HOST, "username": "root", "password": "pw"},
    )
    await _post(admin, f"/zones/{z}/backup-storage/{bs['uuid']}")
    image = await admin.inventory(
        "/images",
        {
            "name": "img",
            "url": f"http://images.example/img.qcow2?size={IMAGE_SIZE}",
            "backupStorageUuids": [bs["uuid"]],
        },
    )
    return Dc(
        zone=z,
        cluster=c,
        hosts=[h["uuid"] for h in hosts],
        host_ips=host_ips,
        local=local["uuid"],
        nfs=nfs["uuid"],
        image=image["uuid"],
        bs=bs["uuid"],
    )


async def ps_available(admin: ApiClient, uuid: str) -> int:
    answer = await admin.query("/primary-storage", f"uuid={uuid}")
    assert answer.status == 200, answer.body
    return int(answer.body["inventories"][0]["availableCapacity"])


async def test_root_volume_over_the_bus_on_local_storage(
    node: ManagementNode, admin: ApiClient, sim: Simulator
) -> None:
    dc = await build(admin, "rv", ["10.60.0.1"])
    assert node.ctx is not None
    bus = node.ctx.bus
    before = await ps_available(admin, dc.local)
    vm, volume = new_uuid(), new_uuid()

    reply = await bus.request(
        CreateRootVolumeMsg(
            volume_uuid=volume,
            name="root",
            vm_instance_uuid=vm,
            host_uuid=dc.hosts[0],
            cluster_uuid=dc.cluster,
            image_uuid=dc.image,
            size=5 * GIB,
            primary_storage_uuid=dc.local,
        ),
        VolumeReply,
    )
    view = reply.volume
    assert view is not None
    assert (view.type, view.device_id, view.vm_instance_uuid) == ("Root", 0, vm)
    assert view.primary_storage_uuid == dc.local
    assert view.host_uuid == dc.hosts[0]
    assert view.size == 5 * GIB
    # The volume's 5 GiB and the image cached on the host.
    assert await ps_available(admin, dc.local) == before - 5 * GIB - IMAGE_SIZE
    files = sim.machine(dc.host_ips[0]).local_files or {}
    assert files[view.install_path] == IMAGE_SIZE
    assert any("imagecache" in path for path in files)

    listed = await bus.request(ListVmVolumesMsg(vm_instance_uuid=vm), ListVmVolumesReply)
    assert [v.uuid for v in listed.volumes] == [volume]

    # A data volume for the same VM goes to the root volume's host.
    data = new_uuid()
    made = await bus.request(
        CreateDataVolumeForVmMsg(
            volume_uuid=data,
            name="data",
            vm_instance_uuid=vm,
            host_uuid=dc.hosts[0],
            cluster_uuid=dc.cluster,
            size=GIB,
            device_id=1,
            primary_storage_uuid=dc.local,
        ),
        VolumeReply,
    )
    assert made.volume is not None
    assert made.volume.device_id == 1
    listed = await bus.request(ListVmVolumesMsg(vm_instance_uuid=vm), ListVmVolumesReply)
    assert [v.uuid for v in listed.volumes] == [volume, data]

    for uuid in (data, volume, volume):  # the second delete of one volume is a no-op
        (await bus.call(DeleteVolumeMsg(volume_uuid=uuid))).raise_if_error()
    # The cache stays for the next VM of this image.
    assert await ps_available(admin, dc.local) == before - IMAGE_SIZE
    files = sim.machine(dc.host_ips[0]).local_files or {}
    assert view.install_path not in files
    listed = await bus.request(ListVmVolumesMsg(vm_instance_uuid=vm), ListVmVolumesReply)
    assert listed.volumes == []


async def test_root_volume_on_nfs_and_a_failed_clone_leaves_nothing(
    node: ManagementNode, admin: ApiClient, sim: Simulator
) -> None:
    dc = await build(admin, "nf", ["10.60.2.1"])
    assert node.ctx is not None
    bus = node.ctx.bus
    before = await ps_available(admin, dc.nfs)

    def msg(volume: str) -> CreateRootVolumeMsg:
        return CreateRootVolumeMsg(
            volume_uuid=volume,
            name="root",
            vm_instance_uuid=new_uuid(),
            host_uuid=dc.hosts[0],
            cluster_uuid=dc.cluster,
            image_uuid=dc.image,
            primary_storage_uuid=dc.nfs,
        )

    sim.set_fault(
        dc.host_ips[0],
        "/nfsprimarystorage/sftp/createvolumefromtemplate",
        fail="disk full",
        times=1,
    )
    failed: Reply = await bus.call(msg(new_uuid()))
    assert not failed.success
    assert failed.error is not None
    assert "disk full" in str(failed.error.model_dump())
    # Capacity, the cache made on the way and the row: all undone.
    assert await ps_available(admin, dc.nfs) == before
    volumes = await admin.query("/volumes", f"primaryStorageUuid={dc.nfs}")
    assert volumes.body["inventories"] == []

    ok = await bus.request(msg(new_uuid()), VolumeReply)
    assert ok.volume is not None
    assert ok.volume.host_uuid is None
    assert await ps_available(admin, dc.nfs) == before - 2 * IMAGE_SIZE
    (await bus.call(DeleteVolumeMsg(volume_uuid=ok.volume.uuid))).raise_if_error()
    assert await ps_available(admin, dc.nfs) == before - IMAGE_SIZE


# ----- over REST, with VMs ------------------------------------------------------------------


async def new_vm(admin: ApiClient, dc: dict[str, Any], name: str) -> dict[str, Any]:
    answer = await admin.create(
        "/vm-instances",
        {
            "name": name,
            "imageUuid": dc["image"]["uuid"],
            "instanceOfferingUuid": dc["offering"]["uuid"],
            "l3NetworkUuids": [dc["l3"]["uuid"]],
        },
    )
    assert answer.status == 200, answer.body
    inventory: dict[str, Any] = answer.body["inventory"]
    return inventory


async def volume(admin: ApiClient, uuid: str) -> dict[str, Any] | None:
    answer = await admin.request("GET", f"/volumes/{uuid}")
    assert answer.status == 200, answer.body
    found: list[dict[str, Any]] = answer.body["inventories"]
    return found[0] if found else None


async def found(admin: ApiClient, path: str, condition: str) -> set[str]:
    answer = await admin.query(path, condition)
    assert answer.status == 200, answer.body
    return {item["uuid"] for item in answer.body["inventories"]}


async def attach(admin: ApiClient, volume_uuid: str, vm_uuid: str) -> Any:
    path = f"/volumes/{volume_uuid}/vm-instances/{vm_uuid}"
    return await admin.finish(await admin.request("POST", path, json={"params": {}}))


async def test_data_volume_create_attach_detach_delete_over_rest(
    admin: ApiClient, sim: Simulator
) -> None:
    dc = await add_full_datacenter(admin, "dv", ["10.61.0.1"], storage=("local",))
    ps, ip = dc["local"]["uuid"], "10.61.0.1"
    vm = await new_vm(admin, dc, "vm")
    before = await ps_available(admin, ps)
    size = dc["disk_offering"]["diskSize"]

    made = await admin.inventory(
        "/volumes/data", {"name": "d1", "diskOfferingUuid": dc["disk_offering"]["uuid"]}
    )
    assert (made["status"], made["type"], made["size"]) == ("NotInstantiated", "Data", size)
    assert made.get("primaryStorageUuid") is None
    assert await ps_available(admin, ps) == before
    candidates = await admin.request("GET", f"/volumes/{made['uuid']}/candidate-vm-instances")
    assert candidates.status == 200, candidates.body
    assert [v["uuid"] for v in candidates.body["inventories"]] == [vm["uuid"]]

    attached = await attach(admin, made["uuid"], vm["uuid"])
    assert attached.status == 200, attached.body
    inv = attached.body["inventory"]
    assert (inv["status"], inv["vmInstanceUuid"], inv["deviceId"]) == ("Ready", vm["uuid"], 1)
    assert inv["primaryStorageUuid"] == ps
    assert await ps_available(admin, ps) == before - size
    machine = sim.machine(ip)
    assert (machine.local_files or {})[inv["installPath"]] == size
    assert made["uuid"] in (machine.vms or {})[vm["uuid"]].volumes  # type: ignore[operator]

    candidates = await admin.request("GET", f"/volumes/{made['uuid']}/candidate-vm-instances")
    assert candidates.body["inventories"] == []
    again = await attach(admin, made["uuid"], vm["uuid"])
    assert again.status == 409
    assert again.error["code"] == "VOLUME.1001"

    # Joins both ways (ZStack's expanded queries).
    assert await found(admin, "/volumes", f"vmInstanceUuid={vm['uuid']}") >= {made["uuid"]}
    assert await found(admin, "/primary-storage", f"volume.uuid={made['uuid']}") == {ps}
    disk = dc["disk_offering"]["uuid"]
    assert await found(admin, "/disk-offerings", f"volume.uuid={made['uuid']}") == {disk}
    assert await found(admin, "/volumes", "diskOffering.name=" + dc["disk_offering"]["name"]) == {
        made["uuid"]
    }
    root = vm["rootVolumeUuid"]
    assert await found(admin, "/images", f"volume.uuid={root}") == {dc["image"]["uuid"]}
    assert await found(admin, "/volumes", f"vmInstance.uuid={vm['uuid']}") == {root, made["uuid"]}

    detached = await admin.delete(f"/volumes/{made['uuid']}/vm-instances")
    assert detached.status == 200, detached.body
    assert detached.body["inventory"].get("vmInstanceUuid") is None
    assert made["uuid"] not in ((machine.vms or {})[vm["uuid"]].volumes or [])
    not_attached = await admin.delete(f"/volumes/{made['uuid']}/vm-instances")
    assert not_attached.status == 409
    assert not_attached.error["code"] == "VOLUME.1005"

    # Delay: Deleted and recoverable, still on its storage.
    await set_global_config(admin, "volume", "deletionPolicy", "Delay")
    assert (await admin.delete(f"/volumes/{made['uuid']}")).status == 200
    deleted = await volume(admin, made["uuid"])
    assert deleted is not None
    assert deleted["status"] == "Deleted"
    assert await ps_available(admin, ps) == before - size
    recovered = await admin.action(f"/volumes/{made['uuid']}/actions", "recoverDataVolume", {})
    assert recovered.status == 200
    assert recovered.body["inventory"]["status"] == "Ready"
    not_deleted = await admin.action(f"/volumes/{made['uuid']}/actions", "expungeDataVolume", {})
    assert not_deleted.status == 409
    assert not_deleted.error["code"] == "VOLUME.1007"
    assert (await admin.delete(f"/volumes/{made['uuid']}")).status == 200
    expunged = await admin.action(f"/volumes/{made['uuid']}/actions", "expungeDataVolume", {})
    assert expunged.status == 200, expunged.body
    assert await volume(admin, made["uuid"]) is None
    assert await ps_available(admin, ps) == before
    assert inv["installPath"] not in (machine.local_files or {})

    # Direct: an attached volume is detached, then removed at once.
    await set_global_config(admin, "volume", "deletionPolicy", "Direct")
    second = await admin.inventory("/volumes/data", {"name": "d2", "diskSize": 3 * GIB})
    assert (await attach(admin, second["uuid"], vm["uuid"])).status == 200
    assert await ps_available(admin, ps) == before - 3 * GIB
    assert (await admin.delete(f"/volumes/{second['uuid']}")).status == 200
    assert await volume(admin, second["uuid"]) is None
    assert await ps_available(admin, ps) == before
    assert second["uuid"] not in ((machine.vms or {})[vm["uuid"]].volumes or [])

    # A root volume is the VM's: not the data volume API's to delete.
    refused = await admin.delete(f"/volumes/{root}")
    assert refused.status == 409
    assert refused.error["code"] == "VOLUME.1001"


async def test_a_failed_attach_undoes_the_instantiation(admin: ApiClient, sim: Simulator) -> None:
    dc = await add_full_datacenter(admin, "fa", ["10.61.1.1"], storage=("nfs",))
    ps = dc["nfs"]["uuid"]
    vm = await new_vm(admin, dc, "vm")
    before = await ps_available(admin, ps)
    made = await admin.inventory("/volumes/data", {"name": "d", "diskSize": GIB})
    actions = f"/volumes/{made['uuid']}/actions"
    renamed = await admin.action(actions, "updateVolume", {"name": "data", "description": "x"})
    assert renamed.status == 200, renamed.body
    assert (renamed.body["inventory"]["name"], renamed.body["inventory"]["description"]) == (
        "data",
        "x",
    )
    disabled = await admin.action(actions, "changeVolumeState", {"stateEvent": "disable"})
    assert disabled.body["inventory"]["state"] == "Disabled"
    refused = await attach(admin, made["uuid"], vm["uuid"])
    assert refused.status == 409
    assert refused.error["code"] == "VOLUME.1001"
    enabled = await admin.action(actions, "changeVolumeState", {"stateEvent": "enable"})
    assert enabled.body["inventory"]["state"] == "Enabled"
    sim.set_fault("10.61.1.1", "/vm/attachdatavolume", fail="no free PCI slot", times=1)
    failed = await attach(admin, made["uuid"], vm["uuid"])
    assert failed.status >= 400
    left = await volume(admin, made["uuid"])
    assert left is not None
    assert (left["status"], left.get("vmInstanceUuid"), left.get("installPath")) == (
        "NotInstantiated",
        None,
        None,
    )
    assert await ps_available(admin, ps) == before
    share = sim.nfs_share(dc["nfs"]["url"])
    assert not any(made["uuid"] in path for path in (share.files or {}))

    assert (await attach(admin, made["uuid"], vm["uuid"])).status == 200
    assert await ps_available(admin, ps) == before - GIB


async def test_detaching_primary_storage_in_use_is_refused(admin: ApiClient) -> None:
    dc = await add_full_datacenter(admin, "pd", ["10.61.2.1"], storage=("local", "nfs"))
    c = dc["cluster"]["uuid"]
    vm = await new_vm(admin, dc, "vm")
    root = await volume(admin, vm["rootVolumeUuid"])
    assert root is not None
    used = root["primaryStorageUuid"]
    refused = await admin.delete(f"/clusters/{c}/primary-storage/{used}")
    assert refused.status == 409, refused.body
    assert refused.error["code"] == "PS.1006"
    assert root["uuid"] in refused.error["details"]["volumeUuids"]
    # The other storage holds nothing of the cluster's: it may go.
    other = ({dc["local"]["uuid"], dc["nfs"]["uuid"]} - {used}).pop()
    assert (await admin.delete(f"/clusters/{c}/primary-storage/{other}")).status == 200


async def test_deleting_the_zone_takes_volumes_snapshots_and_caches_along(
    node: ManagementNode, admin: ApiClient
) -> None:
    dc = await add_full_datacenter(admin, "zd", ["10.61.3.1"], storage=("local", "nfs"))
    vm = await new_vm(admin, dc, "vm")
    data = await admin.inventory("/volumes/data", {"name": "d", "diskSize": GIB})
    assert (await attach(admin, data["uuid"], vm["uuid"])).status == 200
    assert (await admin.delete(f"/volumes/{data['uuid']}/vm-instances")).status == 200
    await admin.inventory(f"/volumes/{data['uuid']}/volume-snapshots", {"name": "s"})
    loose = await admin.inventory("/volumes/data", {"name": "never attached", "diskSize": GIB})

    # The VM goes first (its address holds the L3 network); its root volume goes with it.
    assert (await admin.delete(f"/vm-instances/{vm['uuid']}")).status == 200
    if (await admin.request("GET", f"/vm-instances/{vm['uuid']}")).body["inventories"]:
        expunged = await admin.action(
            f"/vm-instances/{vm['uuid']}/actions", "expungeVmInstance", {}
        )
        assert expunged.status == 200, expunged.body
    assert await volume(admin, vm["rootVolumeUuid"]) is None

    deleted = await admin.delete(f"/zones/{dc['zone']['uuid']}")
    assert deleted.status == 200, deleted.body
    for path in ("/volumes", "/volume-snapshots", "/primary-storage", "/vm-instances"):
        left = await admin.request("GET", path)
        uuids = {i["uuid"] for i in left.body["inventories"]}
        # A data volume that never had storage belongs to no zone, as in ZStack.
        assert uuids <= {loose["uuid"]}, (path, left.body)
    assert node.ctx is not None
    async with node.ctx.db.session() as session:
        assert (await session.execute(select(ImageCacheVO))).first() is None
