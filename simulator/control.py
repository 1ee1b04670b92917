"""The simulator's control API: ``/simulator/...`` JSON routes over ``World``'s methods.

No auth: the simulator listens on loopback for tests and benchmarks. Bodies and answers
are camelCase. A failed operation answers ``{"success": false, "error": ...}`` with the
status of its SimulatorError (400 bad input, 404 unknown machine, 409 wrong state), 502
when a report did not reach the node; a failed deployment answers 200, as the node's
deployer expects.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agents.runtime import ReportError
from simulator.adopt import AdoptedHost, AdoptedVm, adopt_hosts, adopt_vms
from simulator.errors import SimulatorError
from simulator.machine import DEFAULT_INTERFACES, KVM_PORT, Machine
from simulator.world import World

Route = Callable[[web.Request], Awaitable[web.Response]]

# camelCase body field -> (World.declare keyword, accepted JSON type)
_DECLARE_FIELDS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "username": ("username", str),
    "password": ("password", (str, type(None))),
    "cpuNum": ("cpu_num", int),
    "cpuSpeed": ("cpu_speed", int),
    "cpuSockets": ("cpu_sockets", int),
    "memorySize": ("memory_size", int),
    "cpuOverprovisioning": ("cpu_overprovisioning", (int, float)),
    "localStorageCapacity": ("local_storage_capacity", int),
    "storageCapacity": ("storage_capacity", int),
}


class ControlApi:
    """Adds the control routes for ``world`` to an aiohttp router."""

    def __init__(self, world: World) -> None:
        self.world = world

    def add_routes(self, router: web.UrlDispatcher) -> None:
        add = router.add_route
        add("POST", "/simulator/hosts", _guard(self.declare))
        add("GET", "/simulator/hosts", _guard(self.list_machines))
        add("GET", "/simulator/hosts/{address}", _guard(self.get_machine))
        add("POST", "/simulator/deploy", _guard(self.deploy))
        add("PUT", "/simulator/hosts/{address}/faults", _guard(self.set_fault))
        add("DELETE", "/simulator/hosts/{address}/faults", _guard(self.clear_faults))
        add("PUT", "/simulator/hosts/{address}/alive", _guard(self.set_alive))
        add("POST", "/simulator/hosts/{address}/report", _guard(self.report))
        add("POST", "/simulator/nfs", _guard(self.declare_nfs))
        add("GET", "/simulator/nfs", _guard(self.list_nfs))
        add("GET", "/simulator/stats", _guard(self.stats))
        add("POST", "/simulator/adopt", _guard(self.adopt))

    async def declare(self, request: web.Request) -> web.Response:
        body = await _body(request)
        kwargs: dict[str, Any] = {}
        for name, (keyword, kind) in _DECLARE_FIELDS.items():
            if name in body:
                kwargs[keyword] = _typed(body, name, kind)
        interfaces = body.get("physicalInterfaces", list(DEFAULT_INTERFACES))
        if not isinstance(interfaces, list) or not all(isinstance(i, str) for i in interfaces):
            raise SimulatorError("physicalInterfaces must be a list of strings")
        machine = self.world.declare(
            _typed(body, "address", str),
            _port(body.get("port", KVM_PORT)),
            physical_interfaces=tuple(interfaces),
            **kwargs,
        )
        return web.json_response(machine.view())

    async def adopt(self, request: web.Request) -> web.Response:
        """``{"like": address, "hosts": [{address, hostUuid, token}], "vms": [{address,
        uuid, name, cpuNum, memorySize, nics, nfsUrl, rootPath, rootSize}]}``: hosts and
        VMs whose rows a bulk path wrote (``simulator.adopt``); hosts first."""
        body = await _body(request)
        hosts = [
            AdoptedHost(
                _typed(h, "address", str), _typed(h, "hostUuid", str), _typed(h, "token", str)
            )
            for h in _objects(body, "hosts")
        ]
        vms = [
            AdoptedVm(
                address=_typed(v, "address", str),
                uuid=_typed(v, "uuid", str),
                name=_typed(v, "name", str),
                cpu_num=_typed(v, "cpuNum", int),
                memory=_typed(v, "memorySize", int),
                nics=tuple(_typed(v, "nics", list)),
                nfs_url=_typed(v, "nfsUrl", str),
                root_path=_typed(v, "rootPath", str),
                root_size=_typed(v, "rootSize", int),
            )
            for v in _objects(body, "vms")
        ]
        if hosts:
            adopt_hosts(self.world, _typed(body, "like", str), hosts)
        if vms:
            adopt_vms(self.world, vms)
        return web.json_response({"hosts": len(hosts), "vms": len(vms)})

    async def stats(self, request: web.Request) -> web.Response:
        """Totals over every machine, for benchmarks: commands handled per path."""
        totals: dict[str, int] = {}
        deployed = 0
        for machine in self.world.machines.values():
            deployed += machine.deployed
            for path, count in (machine.commands or {}).items():
                totals[path] = totals.get(path, 0) + count
        return web.json_response(
            {
                "machines": len(self.world.machines),
                "deployed": deployed,
                "commands": totals,
                # The simulator's own CPU, so a benchmark can tell its share from the node's.
                "cpuSeconds": time.process_time(),
            }
        )

    async def list_machines(self, request: web.Request) -> web.Response:
        return web.json_response([m.view() for m in self.world.machines.values()])

    async def get_machine(self, request: web.Request) -> web.Response:
        return web.json_response(self._machine(request).view())

    async def deploy(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.world.deploy(
            _typed(body, "address", str),
            _port(body.get("port", KVM_PORT)),
            token=_typed(body, "token", str),
            username=_typed(body, "username", str, "root"),
            password=_typed(body, "password", (str, type(None)), None),
            ssh_port=_typed(body, "sshPort", int, 22),
            owner_uuid=_typed(body, "ownerUuid", (str, type(None)), None),
        )
        return web.json_response({"success": True, "error": None})

    async def set_fault(self, request: web.Request) -> web.Response:
        body = await _body(request)
        address, port = _where(request)
        self.world.set_fault(
            address,
            _typed(body, "path", str),
            port=port,
            fail=_typed(body, "fail", (str, type(None)), None),
            delay=float(_typed(body, "delay", (int, float), 0.0)),
            drop_callback=_typed(body, "dropCallback", bool, False),
            times=_typed(body, "times", (int, type(None)), None),
        )
        return web.json_response(self._machine(request).view())

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.world.clear_faults(*_where(request))
        return web.json_response(self._machine(request).view())

    async def set_alive(self, request: web.Request) -> web.Response:
        body = await _body(request)
        address, port = _where(request)
        machine = await self.world.set_alive(address, _typed(body, "alive", bool), port=port)
        return web.json_response(machine.view())

    async def report(self, request: web.Request) -> web.Response:
        body = await _body(request)
        address, port = _where(request)
        report_body = _typed(body, "body", dict, {})
        await self.world.report(address, _typed(body, "commandpath", str), report_body, port=port)
        return web.json_response({"success": True, "error": None})

    async def declare_nfs(self, request: web.Request) -> web.Response:
        body = await _body(request)
        capacity = _typed(body, "capacity", int, None)
        url = _typed(body, "url", str)
        share = (
            self.world.declare_nfs(url)
            if capacity is None
            else self.world.declare_nfs(url, capacity)
        )
        return web.json_response(share.view())

    async def list_nfs(self, request: web.Request) -> web.Response:
        return web.json_response([s.view() for s in self.world.nfs_shares.values()])

    def _machine(self, request: web.Request) -> Machine:
        return self.world.machine(*_where(request))


def _guard(route: Route) -> Route:
    """Turn the control errors into their JSON answers."""

    async def guarded(request: web.Request) -> web.Response:
        try:
            return await route(request)
        except SimulatorError as exc:
            return web.json_response({"success": False, "error": str(exc)}, status=exc.status)
        except ReportError as exc:
            return web.json_response({"success": False, "error": str(exc)}, status=502)

    return guarded


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise SimulatorError(f"the body must be JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SimulatorError("the body must be a JSON object")
    return body


_MISSING: Any = object()


def _objects(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = body.get(name, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SimulatorError(f"{name!r} must be a list of objects")
    return items


def _typed(
    body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = _MISSING
) -> Any:
    """``body[name]`` checked against ``kind`` (bool is not an int here)."""
    if name not in body:
        if default is _MISSING:
            raise SimulatorError(f"missing field {name!r}")
        return default
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise SimulatorError(f"field {name!r} has the wrong type")
    if not isinstance(value, kinds):
        raise SimulatorError(f"field {name!r} has the wrong type")
    return value


def _port(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SimulatorError(f"bad port {value!r}") from None


def _where(request: web.Request) -> tuple[str, int]:
    return request.match_info["address"], _port(request.query.get("port", KVM_PORT))
