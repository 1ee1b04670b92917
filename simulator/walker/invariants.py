"""What must hold after every step, read through the public API and the simulator.

1. The API agrees with the model: the same VMs, each in the model's state, on its host.
2. Nothing is stuck: no VM in a transitional state, every host Connected.
3. The database agrees with the simulated hosts: each machine runs exactly the VMs the
   API places on its host, in the same state.
4. Capacity adds up: each host's free CPU and memory is its baseline less the VMs it runs.
5. Addresses add up: the L3's used addresses are exactly the VMs' NIC addresses, one
   each, for every VM not expunged.
6. Volumes: the API lists the model's data volumes, each Ready once attached and on the
   model's VM; each simulated guest has exactly the data volumes attached to its VM.
7. Storage adds up: the primary storage's free bytes are its baseline less the root
   volumes of the VMs not expunged, the instantiated data volumes and the snapshots.
8. Snapshots: the API lists exactly the model's snapshots, each of the model's volume,
   on the model's parent (in its parent's tree; each root a tree of its own), ``latest``
   where the model says the volume's file rests, Ready, no larger than its volume.
9. Images: the API lists exactly the model's images, each in its status (Ready or
   Deleted), Ready on the backup storage while Ready; the backup storage's free bytes
   are its baseline less the images not expunged.
10. Security groups: the API lists exactly the model's groups, their rules and their
   member NICs; each simulated host holds rules for exactly the member NICs of the VMs
   it runs, each NIC the rules of its groups.
11. VIPs and EIPs: the API lists exactly the model's VIPs; the public L3's used
   addresses are exactly theirs; the API lists the model's EIPs, each on its VIP and
   NIC; each simulated host NATs exactly the EIPs of the VMs it runs, each to its NIC.
12. Port forwarding: the API lists exactly the model's rules, each on its VIP and port,
   with its NIC, state and name; each simulated host forwards exactly the attached,
   Enabled rules of the VMs it runs, each VIP port to its NIC's address.
13. Load balancers: the API lists exactly the model's load balancers (each on its VIP)
   and listeners (each of its load balancer, on its port, with the model's backend NICs);
   the L3's virtual router holds exactly the listeners that have backends, each with
   its backends' addresses.

The L3's virtual router (with load balancers) is part of the baseline: its VM is no VM
of the walk's, its address on the L3 is reserved, its host's capacity is read with it.

(Every error carrying a code is checked as each answer comes, in ``cloud.outcome_of``.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from simulator.walker.balancers import router_table
from simulator.walker.cloud import APPLIANCE_PORT, Cloud
from simulator.walker.forwarding import forwards_on
from simulator.walker.model import EXPUNGED, ON_HOST, TRANSITIONAL, CloudModel

CHECKS = (
    "api-model",
    "no-stuck",
    "db-hosts",
    "capacity",
    "addresses",
    "volumes",
    "storage",
    "snapshots",
    "images",
    "security-groups",
    "eips",
    "port-forwarding",
    "load-balancers",
)


Read = Callable[..., list[dict[str, Any]]]


async def _read_all(cloud: Cloud) -> Read:
    """Every query the checks make, sent at once (the cloud is still between steps, so
    they read one state); ``read(path, *conditions)`` gives one back."""
    l3, public = cloud.dc["l3"]["uuid"], cloud.dc["public"]["uuid"]
    queries = [
        ("/vm-instances", "type=UserVm"),
        ("/hosts",),
        ("/l3-networks/ip-address", f"l3NetworkUuid={l3}"),
        ("/vm-instances/nics", f"l3NetworkUuid={l3}"),
        ("/volumes", "type=Data"),
        ("/volume-snapshots",),
        ("/primary-storage",),
        ("/images",),
        ("/backup-storage",),
        ("/vips",),
        ("/l3-networks/ip-address", f"l3NetworkUuid={public}"),
        ("/eips",),
        ("/security-groups",),
        ("/security-groups/vm-instances/nics",),
        ("/port-forwarding",),
        ("/load-balancers",),
        ("/load-balancers/listeners",),
    ]
    answers = await asyncio.gather(*(cloud.query(*q) for q in queries))
    found = dict(zip(queries, answers, strict=True))

    def read(*query: str) -> list[dict[str, Any]]:
        return found[query]

    return read


async def check(cloud: Cloud) -> list[str]:
    """Every invariant, now; what breaks them (empty: all hold)."""
    model = cloud.model
    assert model is not None
    assert cloud.sim is not None
    problems: list[str] = []
    read = await _read_all(cloud)
    vms = {vm["uuid"]: vm for vm in read("/vm-instances", "type=UserVm")}
    hosts = {h["uuid"]: h for h in read("/hosts")}
    host_index = {h.uuid: h.index for h in model.hosts}

    # 1. the API agrees with the model
    known = {vm.uuid for vm in model.vms}
    for vm in model.vms:
        row = vms.get(vm.uuid)
        if vm.state == EXPUNGED:
            if row is not None:
                problems.append(
                    f"api-model: VM {vm.index} is {row['state']}, expunged in the model"
                )
            continue
        if row is None:
            problems.append(f"api-model: VM {vm.index} is gone, {vm.state} in the model")
            continue
        host = host_index.get(row.get("hostUuid") or "")
        if (row["state"], host) != (vm.state, vm.host):
            problems.append(
                f"api-model: VM {vm.index} is {row['state']} on host {host}, "
                f"{vm.state} on host {vm.host} in the model"
            )
    for uuid, row in vms.items():
        if uuid not in known:
            problems.append(f"api-model: VM {uuid} ({row['name']}) is not in the model")

    # 2. nothing stuck
    for uuid, row in vms.items():
        if row["state"] in TRANSITIONAL:
            problems.append(f"no-stuck: VM {uuid} is {row['state']}")
    for h in model.hosts:
        status = hosts.get(h.uuid, {}).get("status")
        if status != "Connected":
            problems.append(f"no-stuck: host {h.index} is {status}")

    # 3. the database agrees with the simulated hosts
    for h in model.hosts:
        machine = cloud.sim.machine(h.ip)
        runs = {
            uuid: vm.state
            for uuid, vm in (machine.vms or {}).items()
            if uuid != cloud.router_vm  # the baseline's
        }
        placed = {
            uuid: row["state"]
            for uuid, row in vms.items()
            if row.get("hostUuid") == h.uuid and row["state"] in ON_HOST
        }
        if runs != placed:
            problems.append(f"db-hosts: host {h.index} runs {runs}, the database places {placed}")

    # 4. capacity
    for h in model.hosts:
        row = hosts.get(h.uuid, {})
        got = (row.get("availableCpuCapacity"), row.get("availableMemoryCapacity"))
        want = (model.free_cpu(h.index), model.free_memory(h.index))
        if got != want:
            problems.append(f"capacity: host {h.index} has {got} free, the model {want}")

    # 5. addresses
    l3 = cloud.dc["l3"]["uuid"]
    used = [a["ip"] for a in read("/l3-networks/ip-address", f"l3NetworkUuid={l3}")]
    nics = [n["ip"] for n in read("/vm-instances/nics", f"l3NetworkUuid={l3}")]
    twice = [ip for ip, n in Counter(nics).items() if n > 1]
    if twice:
        problems.append(f"addresses: NICs share {twice}")
    if sorted(used) != sorted(nics):
        problems.append(f"addresses: in use {sorted(used)}, NICs hold {sorted(nics)}")
    if len(used) - cloud.l3_reserved != model.ips_used():
        problems.append(
            f"addresses: {len(used)} in use ({cloud.l3_reserved} by the baseline), "
            f"the model {model.ips_used()}"
        )

    # 6. volumes
    rows = {v["uuid"]: v for v in read("/volumes", "type=Data")}
    for volume in model.volumes:
        row = rows.pop(volume.uuid, None)
        if volume.gone or row is None:
            if volume.gone != (row is None):
                problems.append(f"volumes: volume {volume.index} is {row and row['status']}")
            continue
        on = model.vms[volume.vm].uuid if volume.vm is not None else None
        status = "Ready" if volume.ready else "NotInstantiated"
        if (row["status"], row.get("vmInstanceUuid")) != (status, on):
            problems.append(
                f"volumes: volume {volume.index} is {row['status']} on {row.get('vmInstanceUuid')}"
                f", {status} on VM {volume.vm} in the model"
            )
    problems += [f"volumes: volume {uuid} is not in the model" for uuid in rows]
    for vm_model in model.vms:
        if vm_model.host is None or vm_model.state not in ON_HOST:
            continue
        guest = cloud.sim.machine(model.hosts[vm_model.host].ip).vm(vm_model.uuid)
        has = set(guest.volumes or ()) if guest is not None else set()
        if has != model.attached_to(vm_model.index):
            problems.append(f"volumes: the guest of VM {vm_model.index} has {sorted(has)}")

    # 8. snapshots (before the storage: their sizes are in its books)
    snapshots = {s["uuid"]: s for s in read("/volume-snapshots")}
    problems += _snapshots(model, snapshots)

    # 7. storage
    [storage] = read("/primary-storage")
    held = sum(int(s["size"]) for s in snapshots.values())
    free = cloud.storage_free - model.storage_used() - held
    if storage["availableCapacity"] != free:
        problems.append(
            f"storage: {storage['availableCapacity']} free, the model {free} "
            f"(snapshots hold {held})"
        )
    # 9. images
    problems += _images(cloud, model, {i["uuid"]: i for i in read("/images")})
    [backup] = read("/backup-storage")
    free = cloud.backup_free - model.backup_storage_used()
    if backup["availableCapacity"] != free:
        problems.append(
            f"images: the backup storage has {backup['availableCapacity']} free, the model {free}"
        )
    # 10. security groups
    problems += _groups(cloud, model, read)

    # 11. VIPs and EIPs
    problems += _eips(cloud, model, read)

    # 12. port forwarding
    problems += _forwards(cloud, model, read)

    # 13. load balancers
    problems += _balancers(cloud, model, read)
    return problems


def _balancers(cloud: Cloud, model: CloudModel, read: Read) -> list[str]:
    assert cloud.sim is not None
    problems: list[str] = []
    lbs = {b["uuid"]: b["vipUuid"] for b in read("/load-balancers")}
    want = {b.uuid: model.vips[b.vip].uuid for b in model.lbs if not b.gone}
    if lbs != want:
        problems.append(f"load-balancers: the API's (VIP) {lbs}, the model {want}")
    listeners = {
        li["uuid"]: (
            li["loadBalancerUuid"],
            li["loadBalancerPort"],
            sorted(r["vmNicUuid"] for r in li.get("vmNicRefs") or ()),
        )
        for li in read("/load-balancers/listeners")
    }
    expected = {
        li.uuid: (
            model.lbs[li.lb].uuid,
            li.port,
            sorted(model.vms[vm].nic for vm in li.backends),
        )
        for li in model.listeners
        if not li.gone
    }
    if listeners != expected:
        problems.append(
            f"load-balancers: the API's listeners (LB, port, NICs) {listeners}, "
            f"the model {expected}"
        )
    if cloud.router_ip is None:
        return problems
    machine = cloud.sim.find(cloud.router_ip, APPLIANCE_PORT)
    held = (
        machine.appliance.view().get("loadBalancers", {}) if machine and machine.appliance else {}
    )
    got = {
        lb: {
            li["loadBalancerPort"]: sorted(str(n["ip"]) for n in li["nics"])
            for li in to["listeners"]
        }
        for lb, to in held.items()
    }
    table = router_table(model)
    if got != table:
        problems.append(f"load-balancers: the router holds {got}, the model {table}")
    return problems


def _forwards(cloud: Cloud, model: CloudModel, read: Read) -> list[str]:
    assert cloud.sim is not None
    problems: list[str] = []
    rows = {
        r["uuid"]: (r["vipUuid"], r["vipPortStart"], r.get("vmNicUuid"), r["state"], r["name"])
        for r in read("/port-forwarding")
    }
    expected = {
        p.uuid: (
            model.vips[p.vip].uuid,
            p.port,
            model.vms[p.vm].nic if p.vm is not None else None,
            "Enabled" if p.enabled else "Disabled",
            p.name,
        )
        for p in model.pfs
        if not p.gone
    }
    if rows != expected:
        problems.append(
            f"port-forwarding: the API's rules (VIP, port, NIC, state, name) {rows}, "
            f"the model {expected}"
        )
    for h in model.hosts:
        network = cloud.sim.machine(h.ip).network
        held = network.view().get("portForwarding", {}) if network is not None else {}
        got = {key: rule.get("nicIp") for key, rule in held.items()}
        wanted = forwards_on(model, h.index)
        if got != wanted:
            problems.append(f"port-forwarding: host {h.index} forwards {got}, the model {wanted}")
    return problems


def _eips(cloud: Cloud, model: CloudModel, read: Read) -> list[str]:
    assert cloud.sim is not None
    problems: list[str] = []
    vips = {v["uuid"]: v["ip"] for v in read("/vips")}
    want = {v.uuid: v.ip for v in model.live_vips()}
    if vips != want:
        problems.append(
            f"eips: the VIPs are {sorted(vips.values())}, the model's {sorted(want.values())}"
        )
    public = cloud.dc["public"]["uuid"]
    used = [a["ip"] for a in read("/l3-networks/ip-address", f"l3NetworkUuid={public}")]
    if sorted(used) != sorted(want.values()):
        problems.append(
            f"eips: the public L3 has {sorted(used)} in use, the VIPs {sorted(want.values())}"
        )
    rows = {e["uuid"]: (e["vipUuid"], e.get("vmNicUuid")) for e in read("/eips")}
    expected = {
        e.uuid: (model.vips[e.vip].uuid, model.vms[e.vm].nic if e.vm is not None else None)
        for e in model.eips
        if not e.gone
    }
    if rows != expected:
        problems.append(f"eips: the API's EIPs (VIP, NIC) {rows}, the model {expected}")
    for h in model.hosts:
        network = cloud.sim.machine(h.ip).network
        nat = network.view().get("nat", {}) if network is not None else {}
        got = {vip: entry.get("nicIp") for vip, entry in nat.items()}
        wanted = {}
        for e in model.eips:
            if e.gone or e.vm is None:
                continue
            vm = model.vms[e.vm]
            if vm.host == h.index and vm.state in ON_HOST:
                wanted[model.vips[e.vip].ip] = vm.nic_ip
        if got != wanted:
            problems.append(f"eips: host {h.index} NATs {got}, the model {wanted}")
    return problems


def _groups(cloud: Cloud, model: CloudModel, read: Read) -> list[str]:
    assert cloud.sim is not None
    problems: list[str] = []
    rows = {g["uuid"]: g for g in read("/security-groups")}
    want = {g.uuid: g for g in model.groups if not g.gone}
    if set(rows) != set(want):
        problems.append(f"security-groups: the API lists {len(rows)}, the model {len(want)}")
    for uuid, group in want.items():
        row = rows.get(uuid)
        if row is None:
            continue
        ports = sorted(r["startPort"] for r in row.get("rules") or ())
        wanted = sorted(r.port for r in model.rules if r.group == group.index and not r.gone)
        if ports != wanted:
            problems.append(
                f"security-groups: group {group.index} has ports {ports}, the model {wanted}"
            )
    refs = {
        (r["securityGroupUuid"], r["vmNicUuid"]) for r in read("/security-groups/vm-instances/nics")
    }
    members = {(g.uuid, model.vms[vm].nic) for g in want.values() for vm in g.members}
    if refs != members:
        problems.append(
            f"security-groups: member NICs {sorted(refs - members)} not in the model, "
            f"{sorted(members - refs)} missing"
        )
    for h in model.hosts:
        network = cloud.sim.machine(h.ip).network
        held = network.view().get("securityGroupRules", {}) if network is not None else {}
        got = {nic: {r["startPort"] for r in to["rules"]} for nic, to in held.items()}
        expected = {
            vm.nic: model.rules_of_nic(vm.index)
            for vm in model.vms
            if vm.host == h.index and vm.state in ON_HOST and model.is_member(vm.index)
        }
        if got != expected:
            problems.append(f"security-groups: host {h.index} holds {got}, the model {expected}")
    return problems


def _images(cloud: Cloud, model: CloudModel, rows: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    bs = cloud.dc["bs"]["uuid"]
    for image in model.images:
        row = rows.pop(image.uuid, None)
        if image.status == EXPUNGED or row is None:
            if (image.status == EXPUNGED) != (row is None):
                got = row and row["status"]
                problems.append(
                    f"images: image {image.index} is {got}, {image.status} in the model"
                )
            continue
        refs = {r["backupStorageUuid"]: r["status"] for r in row.get("backupStorageRefs") or ()}
        if (row["status"], refs) != (image.status, {bs: image.status}):
            problems.append(
                f"images: image {image.index} is {row['status']} with copies {refs}, "
                f"{image.status} in the model"
            )
    problems += [
        f"images: image {uuid} ({row['name']}) is not in the model" for uuid, row in rows.items()
    ]
    return problems


def _snapshots(model: CloudModel, rows: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    roots: dict[str, int] = {}
    for snap in model.live_snapshots():
        row = rows.get(snap.uuid)
        if row is None:
            problems.append(f"snapshots: snapshot {snap.index} of {snap.of} is gone")
            continue
        kind, _, number = snap.of.partition(":")
        volume = model.vms[int(number)].root if kind == "root" else model.volumes[int(number)].uuid
        parent = model.snapshots[snap.parent] if snap.parent is not None else None
        latest = model.latest.get(snap.of) == snap.index
        got = (row["volumeUuid"], row.get("parentUuid"), bool(row["latest"]), row["status"])
        want = (volume, parent.uuid if parent else None, latest, "Ready")
        if got != want:
            problems.append(
                f"snapshots: snapshot {snap.index} is (volume, parent, latest, status) {got}, "
                f"the model {want}"
            )
        tree = row["treeUuid"]
        if parent is not None and parent.uuid in rows and rows[parent.uuid]["treeUuid"] != tree:
            problems.append(f"snapshots: snapshot {snap.index} is not in its parent's tree")
        if parent is None:
            if tree in roots:
                problems.append(
                    f"snapshots: snapshots {roots[tree]} and {snap.index} are both roots of "
                    f"tree {tree}"
                )
            roots[tree] = snap.index
        if not 0 <= int(row["size"]) <= model.vm_memory:  # every volume is 1 GiB
            problems.append(f"snapshots: snapshot {snap.index} holds {row['size']} bytes")
    known = {s.uuid for s in model.live_snapshots()}
    problems += [
        f"snapshots: snapshot {uuid} ({row['name']}) is not in the model"
        for uuid, row in rows.items()
        if uuid not in known
    ]
    return problems
