"""zstack-cli against a real node with the simulator, as an operator uses it: one-shot
commands (JSON parsed, tables read, exit statuses, the session file), a VM created and
queried from the CLI over a data center built over REST, the interactive shell driven in
a pseudo-terminal (Tab completion of an action, a parameter and a UUID; history), and an
async job left running by Ctrl-C.

The node runs in the test's event loop, so every CLI process is awaited (one-shot) or
driven from a worker thread (pexpect), never waited for on the loop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from simulator import Simulator
from tests.e2e.conftest import ADMIN_PASSWORD
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_datacenter, add_full_datacenter, wait_host_status
from zstackpy.node.node import ManagementNode

CLI = str(Path(sys.executable).parent / "zstack-cli")
UUID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def env(tmp_path: Path, node: ManagementNode) -> dict[str, str]:
    """The CLI's environment: this node, and a home of its own (session, cache, history)."""
    assert node.http is not None
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZSTACK_", "XDG_"))}
    return base | {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "ZSTACK_CLI_PORT": str(node.http.port),
        "TERM": "xterm",
        "NO_COLOR": "1",
        # pexpect answers no cursor-position request; don't wait for one.
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }


async def cli(env: dict[str, str], *args: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_json(env: dict[str, str], *args: str) -> Any:
    code, out, err = await cli(env, *args, "-o", "json")
    assert code == 0, err
    return json.loads(out)


async def log_in(env: dict[str, str]) -> None:
    code, _, err = await cli(
        env, "LogInByAccount", "accountName=admin", f"password={ADMIN_PASSWORD}"
    )
    assert code == 0, err


# Terminal control sequences: a redraw may split "CreateZone" into "CreateZ", moves, "one".
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


class Terminal:
    """A CLI process in a pseudo-terminal, read as the text a user sees in order (control
    sequences dropped); ``expect`` moves past each match, like pexpect's."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.child = pexpect.spawn(CLI, list(args), env=env, encoding="utf-8", dimensions=(40, 200))
        self.raw = ""
        self.pos = 0

    def expect(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = _ANSI.sub("", self.raw)
            found = regex.search(text, self.pos)
            if found:
                self.pos = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in:\n{text[self.pos :]}")
            try:
                self.raw += self.child.read_nonblocking(4096, timeout=left)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                raise AssertionError(f"exited without {pattern!r}:\n{text[self.pos :]}") from None

    def send(self, text: str) -> None:
        self.child.send(text)

    def exit_status(self) -> int | None:
        self.child.expect(pexpect.EOF, timeout=20)
        self.child.close()
        status: int | None = self.child.exitstatus
        return status


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


# ----- one-shot commands --------------------------------------------------------------------


async def test_log_in_create_query_log_out(
    env: dict[str, str], tmp_path: Path, admin: ApiClient
) -> None:
    await log_in(env)
    session_file = tmp_path / "config" / "zstack-cli" / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert ADMIN_PASSWORD not in session_file.read_text()

    created = await cli_json(env, "CreateZone", "name=cli-zone", "description=from the CLI")
    zone = created["inventory"]
    assert (zone["name"], zone["description"]) == ("cli-zone", "from the CLI")
    found = await cli_json(env, "QueryZone", "name=cli-zone", "fields=uuid,name")
    assert found["inventories"] == [{"uuid": zone["uuid"], "name": "cli-zone"}]
    # Conditions with operators, the ZStack CLI way.
    assert (await cli_json(env, "QueryZone", "name~=cli-"))["inventories"][0]["uuid"] == zone[
        "uuid"
    ]
    assert (await cli_json(env, "QueryZone", "name!=cli-zone"))["inventories"] == []
    assert (await cli_json(env, "QueryZone", "description=null"))["inventories"] == []
    assert (await cli_json(env, "QueryZone", "count=true")) == {"total": 1}

    code, table, _ = await cli(env, "QueryZone")
    assert code == 0
    assert "cli-zone" in table
    assert zone["uuid"] in table

    code, _, err = await cli(env, "LogOut")
    assert code == 0, err
    assert json.loads(session_file.read_text()) == {}  # this node's login is gone
    code, out, err = await cli(env, "QueryZone")
    assert code == 1
    assert out == ""
    assert "ID.1005" in err
    assert "LogInByAccount" in err

    # A session that ends elsewhere (expired, logged out by another client) is forgotten.
    await log_in(env)
    (login,) = json.loads(session_file.read_text()).values()
    answer = await admin.request("DELETE", f"/accounts/sessions/{login['uuid']}")
    assert answer.status == 200, answer.body
    code, _, err = await cli(env, "QueryZone")
    assert code == 1
    assert "ID.1001" in err
    assert json.loads(session_file.read_text()) == {}


async def test_exit_statuses_and_errors_on_stderr(env: dict[str, str]) -> None:
    await log_in(env)
    code, out, err = await cli(env, "CreateZon", "name=x")
    assert (code, out) == (2, "")
    assert "unknown action 'CreateZon'" in err
    assert "CreateZone" in err  # the close match
    code, _, err = await cli(env, "CreateZone", "nmae=x")
    assert code == 2
    assert "no parameter 'nmae'" in err
    code, _, err = await cli(env, "CreateCluster", "name=c")
    assert code == 2
    assert "zoneUuid=" in err
    code, _, err = await cli(env, "QueryZone", "limit=-1")
    assert code == 2

    # Commands from a pipe, one a line: the status of the last one that failed.
    proc = await asyncio.create_subprocess_exec(
        CLI,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    script = b"CreateZone name=piped -o json\n# a comment\nCreateZone\nQueryZone name=piped\n"
    piped_out, piped_err = await asyncio.wait_for(proc.communicate(script), 30)
    assert proc.returncode == 2
    assert b"needs name=" in piped_err
    created, _ = json.JSONDecoder().raw_decode(piped_out.decode())  # the first answer
    assert created["inventory"]["name"] == "piped"
    assert piped_out.count(b"piped") == 2  # the create's JSON and the query's table

    # The API refuses: status 1, the error's code and description on stderr.
    code, out, err = await cli(
        env, "CreateCluster", "name=c", "zoneUuid=" + "0" * 32, "hypervisorType=KVM", "-o", "json"
    )
    assert (code, out) == (1, "")
    assert re.search(r"Error [A-Z]+\.\d{4}: ", err), err

    # Nobody listens on this port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    code, out, err = await cli(env, "-p", str(free_port), "QueryZone")
    assert (code, out) == (1, "")
    assert f"cannot reach the management node at http://127.0.0.1:{free_port}" in err


async def test_settings_precedence_flag_over_env_over_file(
    env: dict[str, str], tmp_path: Path, node: ManagementNode
) -> None:
    await log_in(env)
    assert node.http is not None
    config = tmp_path / "config" / "zstack-cli" / "config.toml"
    config.write_text(f'port = {node.http.port}\noutput = "json"\n')
    no_port = {k: v for k, v in env.items() if k != "ZSTACK_CLI_PORT"}
    code, out, _ = await cli(no_port, "QueryZone")  # port and output from the file
    assert code == 0
    assert json.loads(out) == {"inventories": []}
    code, out, _ = await cli(no_port | {"ZSTACK_CLI_OUTPUT": "table"}, "QueryZone")
    assert code == 0
    assert "0 rows" in out  # a table: the environment beats the file
    code, out, _ = await cli(no_port | {"ZSTACK_CLI_OUTPUT": "table"}, "-o", "json", "QueryZone")
    assert json.loads(out) == {"inventories": []}  # the flag beats both


async def test_vm_created_and_queried_from_the_cli(env: dict[str, str], admin: ApiClient) -> None:
    dc = await add_full_datacenter(admin, "cli", ["10.70.0.1"], storage=("local",))
    await log_in(env)
    created = await cli_json(
        env,
        "CreateVmInstance",
        "name=cli-vm",
        f"imageUuid={dc['image']['uuid']}",
        f"instanceOfferingUuid={dc['offering']['uuid']}",
        f"l3NetworkUuids={dc['l3']['uuid']}",
    )
    vm = created["inventory"]
    assert (vm["name"], vm["state"]) == ("cli-vm", "Running")

    found = await cli_json(env, "QueryVmInstance", "state=Running", "fields=uuid,name")
    assert found["inventories"] == [{"uuid": vm["uuid"], "name": "cli-vm"}]
    joined = await cli_json(env, "QueryVmInstance", f"vmNics.l3NetworkUuid={dc['l3']['uuid']}")
    assert [v["uuid"] for v in joined["inventories"]] == [vm["uuid"]]

    # An action on a path whose variable the route names differently (vmInstanceUuid).
    stopped = await cli_json(env, "StopVmInstance", f"uuid={vm['uuid']}")
    assert stopped["inventory"]["state"] == "Stopped"
    code, table, err = await cli(env, "QueryVmInstance", f"uuid={vm['uuid']}")
    assert code == 0, err
    assert "Stopped" in table
    code, _, err = await cli(env, "DestroyVmInstance", f"uuid={vm['uuid']}")
    assert code == 0, err
    destroyed = await cli_json(env, "QueryVmInstance", f"uuid={vm['uuid']}", "fields=state")
    assert destroyed["inventories"] == [{"state": "Destroyed"}]


# ----- the interactive shell ----------------------------------------------------------------


async def test_shell_completes_action_parameter_and_uuid(
    env: dict[str, str], admin: ApiClient, tmp_path: Path
) -> None:
    zone = await admin.inventory("/zones", {"name": "tab-zone"})

    def interact() -> int | None:
        shell = Terminal(env)
        shell.expect("- >>>")  # not logged in yet
        shell.send(f"LogInByAccount accountName=admin password={ADMIN_PASSWORD}\r")
        shell.expect("admin >>>")
        # An action name: the only one starting so.
        shell.send("CreateZ\t")
        shell.expect("CreateZone")
        # A parameter name of that action.
        shell.send(" descr\t")
        shell.expect("description=")
        shell.send("\x15")  # Ctrl-U: clear the line
        # A query's field, read from the node.
        shell.send("QueryZone na\t")
        shell.expect("name=")
        shell.send("tab-zone -o json\r")
        shell.expect(f'"uuid": "{zone["uuid"]}"')
        shell.expect("admin >>>")
        # A UUID, found by the resource's name, then the command run with it.
        shell.send("DeleteZone uuid=tab-\t")
        shell.expect(zone["uuid"])
        shell.send("\r")
        shell.expect("admin >>>")
        shell.send("exit\r")
        return shell.exit_status()

    def recall() -> int | None:
        # A new shell: Up arrow brings back the last command before "exit".
        shell = Terminal(env)
        shell.expect("admin >>>")  # the session was kept too
        shell.send("\x1b[A\x1b[A")
        shell.expect("DeleteZone uuid=" + zone["uuid"])
        shell.send("\x04")  # Ctrl-D on the line: leave
        shell.send("\x15\x04")
        return shell.exit_status()

    assert await in_thread(interact) == 0
    assert await in_thread(recall) == 0
    answer = await admin.query("/zones", f"uuid={zone['uuid']}")
    assert answer.body["inventories"] == []
    # History survives the shell, without the password.
    history = (tmp_path / "state" / "zstack-cli" / "history").read_text()
    assert "DeleteZone uuid=" + zone["uuid"] in history
    assert "password=***" in history
    assert ADMIN_PASSWORD not in history


async def test_ctrl_c_leaves_the_job_running_and_says_how_to_poll(
    env: dict[str, str], admin: ApiClient, sim: Simulator
) -> None:
    _, cluster, _ = await add_datacenter(admin, "slow", [])
    sim.declare("10.71.0.1")
    sim.declare("10.71.0.2")
    # Long enough for a loaded machine to start the CLI and draw its progress first.
    sim.set_fault("10.71.0.1", "/host/connect", delay=3.0, times=1)
    sim.set_fault("10.71.0.2", "/host/connect", delay=2.0, times=1)
    await log_in(env)
    add = ["AddKVMHost", f"clusterUuid={cluster['uuid']}", "username=root", "password=pw"]

    def interrupt() -> tuple[str, int | None]:
        run = Terminal(env, *add, "name=slow-1", "managementIp=10.71.0.1")
        run.expect(r"AddKVMHost: running [\d.]+ s")  # the progress line
        run.child.sendintr()
        try:
            job = run.expect(r"GetApiJob uuid=([0-9a-f]{32})", timeout=1.5).group(1)
        except AssertionError:
            # A Ctrl-C pressed just as the first progress frame is drawn has twice gone
            # unanswered in full suite runs (never alone); a user presses again, and the
            # second one must work while the job still runs (it takes 3 s).
            if not run.child.isalive():
                raise
            run.child.sendintr()
            job = run.expect(r"GetApiJob uuid=([0-9a-f]{32})").group(1)
        return job, run.exit_status()

    job, status = await in_thread(interrupt)
    assert status == 130
    # The job went on without the CLI; its result is there to poll.
    hosts = await admin.query("/hosts", "name=slow-1")
    host = await wait_host_status(admin, hosts.body["inventories"][0]["uuid"], "Connected", 10)
    result = await cli_json(env, "GetApiJob", f"uuid={job}")
    assert result["inventory"]["uuid"] == host["uuid"]

    # --timeout stops the waiting too, with status 1.
    code, out, err = await cli(
        env, *add, "name=slow-2", "managementIp=10.71.0.2", "--timeout", "0.3"
    )
    assert (code, out) == (1, "")
    assert "timed out" in err
    assert "GetApiJob uuid=" in err


# ----- the action catalogue -----------------------------------------------------------------


async def test_actions_come_from_the_node_and_the_cache_follows_its_etag(
    env: dict[str, str], admin: ApiClient, tmp_path: Path
) -> None:
    url = f"{admin.base}/zstack/v1/openapi.json"
    async with admin.http.get(url) as first:
        etag = first.headers["ETag"]
    async with admin.http.get(url, headers={"If-None-Match": etag}) as again:
        assert again.status == 304

    await log_in(env)
    (cache,) = (tmp_path / "cache" / "zstack-cli").glob("actions-*.json")
    cached = json.loads(cache.read_text())
    assert cached["etag"] == etag
    # While the node's document is unchanged, the cached list is what the CLI knows ...
    del cached["actions"]["QueryZone"]
    cache.write_text(json.dumps(cached))
    code, _, err = await cli(env, "QueryZone")
    assert code == 2
    assert "unknown action 'QueryZone'" in err
    # ... and once the node's document differs, its list replaces the cached one.
    cache.write_text(json.dumps(cached | {"etag": '"an older document"'}))
    assert await cli_json(env, "QueryZone") == {"inventories": []}
    assert json.loads(cache.read_text())["etag"] == etag
