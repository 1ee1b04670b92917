"""The system under test: a fresh embedded node (SQLite, in-process bus) whose hosts the
in-process simulator plays (or several nodes, ``WalkConfig.nodes``), the walk's data
center built over REST, emptied between walks, and its baseline read. (The steps are
done in ``simulator.walker.actions``.)

The data center is small on purpose, so a short walk reaches its edges: hosts with room
for four VMs each, an L3 range of ten addresses, NFS primary storage (a VM may start or
migrate to any host).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from simulator import Simulator
from simulator.stress.rest import Answer, ApiClient
from simulator.walker.model import CloudModel, HostModel, ImageModel
from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode

GIB = 1024**3
ADMIN_PASSWORD = "walker-admin-pw"  # noqa: S105 - a throwaway node on loopback
JOB_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 10.0
RESOURCES = (
    "snapshots",
    "images",
    "security-groups",
    "eips",
    "port-forwarding",
    "load-balancers",
)
PUBLIC_IPS = 3  # the public L3's addresses: VIPs run out after three
APPLIANCE_PORT = 7272  # a virtual router's agent


class WalkError(AssertionError):
    """A step broke the model or an invariant; the message lists what."""


@dataclass(frozen=True)
class WalkConfig:
    """What a walk runs against; written in the log's header so replay builds the same.

    ``plugins``: extra node plugins (module:attribute), e.g. a test's seeded bug;
    ``faults``: the fault kinds the walk may inject; ``resources``: which of RESOURCES
    the walk acts on (all by default); ``resend_after_s``: how soon the
    node's agent client asks again for a late result (a lost callback costs that long).
    """

    hosts: int = 2
    host_memory_gib: int = 5  # 1 GiB is reserved: room for four 1-GiB VMs
    ip_capacity: int = 10
    plugins: tuple[str, ...] = ()
    nodes: int = 1  # more: a cluster in one process, operations sent to each in turn
    faults: tuple[str, ...] = ("agent-error", "lost-callback", "host-outage")
    resend_after_s: float = 0.3
    # The resources the walk acts on beside VMs and data volumes (RESOURCES).
    resources: tuple[str, ...] = RESOURCES

    def to_json(self) -> dict[str, Any]:
        return {
            "hosts": self.hosts,
            "hostMemoryGib": self.host_memory_gib,
            "ipCapacity": self.ip_capacity,
            "plugins": list(self.plugins),
            "nodes": self.nodes,
            "faults": list(self.faults),
            "resendAfterS": self.resend_after_s,
            "resources": list(self.resources),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> WalkConfig:
        return cls(
            hosts=int(raw.get("hosts", 2)),
            host_memory_gib=int(raw.get("hostMemoryGib", 5)),
            ip_capacity=int(raw.get("ipCapacity", 10)),
            plugins=tuple(raw.get("plugins", ())),
            nodes=int(raw.get("nodes", 1)),
            faults=tuple(raw.get("faults", ())),
            resend_after_s=float(raw.get("resendAfterS", 0.3)),
            resources=tuple(raw.get("resources", RESOURCES)),
        )


def host_ip(index: int) -> str:
    return f"10.77.0.{index + 1}"


@dataclass
class Cloud:
    """Start with ``start`` (or ``async with``); ``model`` is reset by ``reset``."""

    config: WalkConfig
    node: ManagementNode | None = None
    sim: Simulator | None = None
    rest: ApiClient | None = None
    dc: dict[str, Any] = field(default_factory=dict)
    model: CloudModel | None = None
    _http: aiohttp.ClientSession | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _baseline: CloudModel | None = None
    storage_free: int = 0  # the primary storage's free bytes with no VM and no volume
    backup_free: int = 0  # the backup storage's free bytes with the base image only
    nodes: list[ManagementNode] = field(default_factory=list)
    clients: list[ApiClient] = field(default_factory=list)  # one per node
    _own_sim: Simulator | None = None  # cluster mode: the simulator every node drives
    sent: int = 0  # operations sent: they go to the nodes in turn
    # With load balancers: the walk's L3's virtual router, made while the cloud is built
    # and part of the baseline (its VM, its address on the L3, its capacity on a host).
    router_vm: str | None = None
    router_ip: str | None = None  # its management address: its agent's machine
    l3_reserved: int = 0  # the walk's L3 addresses in use with no VM of the walk
    # ----- life -------------------------------------------------------------------------

    async def start(self) -> None:
        self._tmp = await asyncio.to_thread(tempfile.TemporaryDirectory, prefix="walker-")
        tmp = Path(self._tmp.name)
        settings = NodeSettings(
            data_dir=tmp,
            db_url=f"sqlite+aiosqlite:///{tmp / 'zstack.db'}",
            http_port=0,
            bus_url=None,
            plugins=list(self.config.plugins),
            admin_password=SecretStr(ADMIN_PASSWORD),
        )
        await upgrade(settings.database_url)
        if self.config.nodes > 1:
            # A cluster in one process: one database file, one in-process broker, and one
            # simulator every node drives (as real hosts are shared).
            self._own_sim = Simulator()
            await self._own_sim.start()
            settings = settings.model_copy(update={"simulator_url": self._own_sim.base_url})
        broker = InProcBroker()
        self._http = aiohttp.ClientSession()
        for _ in range(self.config.nodes):
            node = ManagementNode(settings, broker=broker)
            await node.start()
            self.nodes.append(node)
            assert node.ctx is not None
            assert node.http is not None
            # A lost callback costs one resend period; the walk shortens it from 5 s.
            node.ctx.agents.resend_after = self.config.resend_after_s
            client = ApiClient(f"http://127.0.0.1:{node.http.port}", self._http)
            await client.login("admin", ADMIN_PASSWORD)
            self.clients.append(client)
        self.node, self.rest = self.nodes[0], self.clients[0]
        self.sim = self._own_sim or self.node.simulator
        assert self.sim is not None
        await self._build()
        await self.read_baseline()
        self.model = self._fresh_model()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        for node in reversed(self.nodes):
            await node.stop()
        self.nodes, self.clients = [], []
        if self._own_sim is not None:
            await self._own_sim.stop()
            self._own_sim = None
        if self._tmp is not None:
            await asyncio.to_thread(self._tmp.cleanup)

    async def restart(self) -> None:
        """A fresh node, simulator and data center in place of this one's."""
        await self.stop()
        self.node = self.sim = self.rest = self.model = self._baseline = None
        self.router_vm = self.router_ip = None
        self.sent = 0
        self._http = self._tmp = None
        await self.start()

    async def __aenter__(self) -> Cloud:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----- REST -------------------------------------------------------------------------

    async def call(
        self, method: str, path: str, body: Any = None, *, client: ApiClient | None = None
    ) -> Answer:
        """One API call (to ``client``'s node, default the first) followed to its job's
        end; a job still open after JOB_TIMEOUT_S fails the walk (a hung call)."""
        client = client or self.rest
        assert client is not None
        try:
            async with asyncio.timeout(JOB_TIMEOUT_S):
                return await client.job(method, path, body, poll_s=0.02)
        except TimeoutError:
            raise WalkError(f"{method} {path}: no end within {JOB_TIMEOUT_S} s") from None

    async def create(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = await self.call("POST", path, {"params": params})
        if answer.status != 200:
            raise RuntimeError(f"building the data center: POST {path}: {answer.body}")
        inventory: dict[str, Any] = answer.body["inventory"]
        return inventory

    async def query(self, path: str, *conditions: str) -> list[dict[str, Any]]:
        query = "&".join(f"q={c}" for c in conditions)
        answer = await self.call("GET", f"{path}?{query}&limit=10000" if query else path)
        if answer.status != 200:
            raise WalkError(f"GET {path}: {answer.status} {answer.body}")
        found: list[dict[str, Any]] = answer.body["inventories"]
        return found

    async def _build(self) -> None:
        assert self.sim is not None
        for i in range(self.config.hosts):
            self.sim.declare(host_ip(i), cpu_num=4, memory_size=self.config.host_memory_gib * GIB)
        zone = await self.create("/zones", {"name": "walk-zone"})
        z = zone["uuid"]
        cluster = await self.create(
            "/clusters", {"name": "walk-cluster", "zoneUuid": z, "hypervisorType": "KVM"}
        )
        c = cluster["uuid"]
        nfs = await self.create(
            "/primary-storage/nfs",
            {"name": "walk-nfs", "url": "nfs.walk.example:/share", "zoneUuid": z},
        )
        await self.create(f"/clusters/{c}/primary-storage/{nfs['uuid']}", {})
        bs = await self.create(
            "/backup-storage/sftp",
            {
                "name": "walk-bs",
                "url": "/bs",
                "hostname": "10.77.0.254",
                "username": "root",
                "password": "pw",
            },
        )
        await self.create(f"/zones/{z}/backup-storage/{bs['uuid']}", {})
        image = await self.create(
            "/images",
            {
                "name": "walk-image",
                "url": "http://images.example/walk.qcow2?size=1073741824",
                "format": "qcow2",
                "mediaType": "RootVolumeTemplate",
                "platform": "Linux",
                "backupStorageUuids": [bs["uuid"]],
            },
        )
        l2 = await self.create(
            "/l2-networks/no-vlan", {"name": "walk-l2", "zoneUuid": z, "physicalInterface": "eth0"}
        )
        await self.create(f"/l2-networks/{l2['uuid']}/clusters/{c}", {})
        l3 = await self.create(
            "/l3-networks", {"name": "walk-l3", "l2NetworkUuid": l2["uuid"], "category": "Private"}
        )
        await self.create(
            f"/l3-networks/{l3['uuid']}/ip-ranges",
            {
                "name": "walk-range",
                "startIp": "172.30.0.10",
                "endIp": f"172.30.0.{9 + self.config.ip_capacity}",
                "netmask": "255.255.255.0",
                "gateway": "172.30.0.1",
            },
        )
        # Security groups on the walk's L3: the SecurityGroup provider on its hosts.
        [provider] = await self.query("/network-services/providers", "type=SecurityGroup")
        await self.create(
            f"/l3-networks/{l3['uuid']}/network-services",
            {"networkServices": {provider["uuid"]: ["SecurityGroup"]}},
        )
        # EIPs and port forwarding on the walk's L3 (the flat provider NATs them on the
        # hosts), their VIPs on a public L3 of a few addresses (the walk reaches its end).
        [flat] = await self.query("/network-services/providers", "type=Flat")
        await self.create(
            f"/l3-networks/{l3['uuid']}/network-services",
            {"networkServices": {flat["uuid"]: ["Eip", "PortForwarding"]}},
        )
        public = await self.create(
            "/l3-networks",
            {"name": "walk-public", "l2NetworkUuid": l2["uuid"], "category": "Public"},
        )
        await self.create(
            f"/l3-networks/{public['uuid']}/ip-ranges",
            {
                "name": "walk-public-range",
                "startIp": "16.16.16.10",
                "endIp": f"16.16.16.{9 + PUBLIC_IPS}",
                "netmask": "255.255.255.0",
                "gateway": "16.16.16.1",
            },
        )
        offering = await self.create(
            "/instance-offerings", {"name": "walk-offering", "cpuNum": 1, "memorySize": GIB}
        )
        if "load-balancers" in self.config.resources:
            await self._router_services(z, l2["uuid"], l3["uuid"], image["uuid"])
        hosts = []
        for i in range(self.config.hosts):
            hosts.append(
                await self.create(
                    "/hosts/kvm",
                    {
                        "name": f"walk-host-{i}",
                        "managementIp": host_ip(i),
                        "clusterUuid": c,
                        "username": "root",
                        "password": "password",
                    },
                )
            )
        # Host death is noticed in a few tenths of a second instead of minutes; a deleted
        # image stays (Deleted) until it is expunged or recovered.
        for category, name, value in (
            # the router is made once and stays: its monitor must not remake it elsewhere
            # while a host of the walk is down (a new router would take another's room)
            ("virtualRouter", "ping.interval", 3600),
            ("host", "ping.timeout", 0.5),
            ("host", "ping.maxFailure", 2),
            ("host", "ping.interval", 0.1),
            ("image", "deletionPolicy", "Delay"),
        ):
            answer = await self.call(
                "PUT",
                f"/global-configurations/{category}/{name}/actions",
                {"updateGlobalConfig": {"value": str(value)}},
            )
            if answer.status != 200:
                raise RuntimeError(f"global config {category} {name}: {answer.body}")
        self.dc = {
            "image": image,
            "offering": offering,
            "l3": l3,
            "hosts": hosts,
            "bs": bs,
            "public": public,
        }
        # The image cache on the shared storage is filled once and keeps its capacity; a
        # first VM fills it, so no step of the walk sees it grow. With load balancers it
        # starts, so the L3's virtual router is made now, before the baseline is read.
        stopped = "load-balancers" not in self.config.resources
        warm = await self.call(
            "POST", "/vm-instances", self.create_body("warm", 0, stopped=stopped)
        )
        if warm.status != 200:
            raise RuntimeError(f"warming the image cache: {warm.body}")
        uuid = warm.body["inventory"]["uuid"]
        await self.call("DELETE", f"/vm-instances/{uuid}")
        await self.call("PUT", f"/vm-instances/{uuid}/actions", {"expungeVmInstance": {}})

    async def _router_services(self, zone: str, l2: str, l3: str, image: str) -> None:
        """LoadBalancer on the walk's L3 from the virtual router, whose offering puts the
        router's management and public NICs on an L3 of their own (the VIPs' public L3
        keeps its few addresses for the walk)."""
        vr_l3 = await self.create(
            "/l3-networks", {"name": "walk-vr-public", "l2NetworkUuid": l2, "category": "Public"}
        )
        await self.create(
            f"/l3-networks/{vr_l3['uuid']}/ip-ranges",
            {
                "name": "walk-vr-range",
                "startIp": "16.16.17.10",
                "endIp": "16.16.17.20",
                "netmask": "255.255.255.0",
                "gateway": "16.16.17.1",
            },
        )
        await self.create(
            "/instance-offerings/virtual-routers",
            {
                "name": "walk-vr-offering",
                "zoneUuid": zone,
                "managementNetworkUuid": vr_l3["uuid"],
                "imageUuid": image,
                "cpuNum": 1,
                "memorySize": 512 * 1024**2,
                "isDefault": True,
            },
        )
        [router] = await self.query("/network-services/providers", "type=VirtualRouter")
        await self.create(
            f"/l3-networks/{l3}/network-services",
            {"networkServices": {router["uuid"]: ["LoadBalancer"]}},
        )

    def create_body(self, name: str, host: int | None, *, stopped: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {
            "name": name,
            "imageUuid": self.dc["image"]["uuid"],
            "instanceOfferingUuid": self.dc["offering"]["uuid"],
            "l3NetworkUuids": [self.dc["l3"]["uuid"]],
        }
        if host is not None:
            params["hostUuid"] = self.dc["hosts"][host]["uuid"]
        if stopped:
            params["strategy"] = "CreateStopped"
        return {"params": params}

    def _fresh_model(self) -> CloudModel:
        if self._baseline is None:
            raise RuntimeError("reset() reads the baseline first")
        return CloudModel(
            hosts=[HostModel(h.index, h.ip, h.uuid, h.cpu, h.memory) for h in self._baseline.hosts],
            vm_cpu=1,
            vm_memory=GIB,
            ip_capacity=self.config.ip_capacity - self.l3_reserved,
            images=[ImageModel(0, self.dc["image"]["uuid"], GIB)],
            public_ip_capacity=PUBLIC_IPS,
        )

    async def read_baseline(self) -> None:
        """The hosts' free capacity with no VM: what the model starts from."""
        by_uuid = {h["uuid"]: h for h in await self.query("/hosts")}
        hosts = []
        for i, made in enumerate(self.dc["hosts"]):
            host = by_uuid[made["uuid"]]
            hosts.append(
                HostModel(
                    i,
                    host_ip(i),
                    made["uuid"],
                    int(host["availableCpuCapacity"]),
                    int(host["availableMemoryCapacity"]),
                )
            )
        self._baseline = CloudModel(hosts=hosts, vm_cpu=1, vm_memory=GIB, ip_capacity=0)
        routers = await self.query("/vm-instances/appliances/virtual-routers")
        if routers:
            [router] = routers
            self.router_vm = router["uuid"]
            vr_nic = next(
                n for n in router["vmNics"] if n["l3NetworkUuid"] != self.dc["l3"]["uuid"]
            )
            self.router_ip = vr_nic["ip"]
        l3 = self.dc["l3"]["uuid"]
        self.l3_reserved = len(await self.query("/l3-networks/ip-address", f"l3NetworkUuid={l3}"))
        [storage] = await self.query("/primary-storage")
        self.storage_free = int(storage["availableCapacity"])
        [backup] = await self.query("/backup-storage")
        self.backup_free = int(backup["availableCapacity"])

    async def reset(self) -> None:
        """Back to an empty cloud between two walks on one node: every fault cleared,
        every VM destroyed and expunged; the model starts again from the baseline."""
        assert self.sim is not None
        for i in range(self.config.hosts):
            self.sim.clear_faults(host_ip(i))
        if self.router_ip is not None:
            self.sim.clear_faults(self.router_ip, APPLIANCE_PORT)
        # Every VM and data volume the API lists, the model's and any a failed walk left.
        for row in await self.query("/vm-instances", "type=UserVm"):  # not the router
            await self._expunge(row["uuid"], row["state"])
        for row in await self.query("/volumes", "type=Data"):
            answer = await self.call("DELETE", f"/volumes/{row['uuid']}")
            if answer.status != 200:
                raise WalkError(f"emptying the cloud: delete volume {row['uuid']}: {answer.body}")
        for row in await self.query("/vips"):  # their EIPs and rules go with them
            answer = await self.call("DELETE", f"/vips/{row['uuid']}")
            if answer.status != 200:
                raise WalkError(f"emptying the cloud: delete VIP {row['uuid']}: {answer.body}")
        for row in await self.query("/security-groups"):
            answer = await self.call("DELETE", f"/security-groups/{row['uuid']}")
            if answer.status != 200:
                raise WalkError(f"emptying the cloud: delete group {row['uuid']}: {answer.body}")
        # Every image but the base one expunged; the base one Ready.
        for row in await self.query("/images"):
            base = row["uuid"] == self.dc["image"]["uuid"]
            if base and row["status"] == "Ready":
                continue
            if row["status"] != "Deleted" and not base:
                await self.call("DELETE", f"/images/{row['uuid']}")
            action = "recoverImage" if base else "expungeImage"
            answer = await self.call("PUT", f"/images/{row['uuid']}/actions", {action: {}})
            if answer.status != 200:
                raise WalkError(f"emptying the cloud: {action} {row['uuid']}: {answer.body}")
        if self._baseline is None:
            await self.read_baseline()
        self.model = self._fresh_model()

    async def _expunge(self, uuid: str, state: str) -> None:
        """Destroy (unless Destroyed) and expunge one VM; WalkError if the node refuses."""
        if state != "Destroyed":
            answer = await self.call("DELETE", f"/vm-instances/{uuid}")
            if answer.status != 200:
                raise WalkError(f"emptying the cloud: destroy {uuid} ({state}): {answer.body}")
        body: dict[str, Any] = {"expungeVmInstance": {}}
        answer = await self.call("PUT", f"/vm-instances/{uuid}/actions", body)
        if answer.status != 200:
            raise WalkError(f"emptying the cloud: expunge {uuid}: {answer.body}")
