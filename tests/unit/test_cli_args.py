"""zstack-cli's ``key=value`` words -> REST requests: conditions as the node parses them,
reserved query keys, typed parameters, path variables, hashed passwords, usage errors."""

from __future__ import annotations

import hashlib

import pytest

from zstackpy.api.query import parse_rest_condition
from zstackpy.cli.args import build, condition, split_arg
from zstackpy.cli.catalogue import Action, Param
from zstackpy.cli.settings import UsageError

QUERY_ZONE = Action("QueryZone", "GET", "/zstack/v1/zones", False, True, True)
CREATE_VM = Action(
    "CreateVmInstance",
    "POST",
    "/zstack/v1/vm-instances",
    True,
    False,
    True,
    body_key="params",
    params={
        "name": Param("name", "string", "body", required=True),
        "cpuNum": Param("cpuNum", "integer", "body"),
        "l3NetworkUuids": Param("l3NetworkUuids", "array", "body", required=True),
        "dataDiskSizes": Param("dataDiskSizes", "array", "body", item_kind="integer"),
        "strategy": Param("strategy", "string", "body", choices=("InstantStart", "JustCreate")),
        "clientInfo": Param("clientInfo", "object", "body"),
        "isPaused": Param("isPaused", "boolean", "body"),
    },
)
START_VM = Action(
    "StartVmInstance",
    "PUT",
    "/zstack/v1/vm-instances/{uuid}/actions",
    True,
    False,
    True,
    body_key="startVmInstance",
    params={
        "uuid": Param("uuid", "string", "path", required=True),
        "hostUuid": Param("hostUuid", "string", "body"),
    },
)
DELETE_ZONE = Action(
    "DeleteZone",
    "DELETE",
    "/zstack/v1/zones/{uuid}",
    True,
    False,
    True,
    params={
        "uuid": Param("uuid", "string", "path", required=True),
        "deleteMode": Param("deleteMode", "string", "query", choices=("Permissive", "Enforcing")),
    },
)
LOG_IN = Action(
    "LogInByAccount",
    "PUT",
    "/zstack/v1/accounts/login",
    False,
    False,
    False,
    body_key="logInByAccount",
    params={
        "accountName": Param("accountName", "string", "body", required=True),
        "password": Param("password", "string", "body", required=True),
    },
)
LOG_OUT = Action(
    "LogOut",
    "DELETE",
    "/zstack/v1/accounts/sessions/{sessionUuid}",
    False,
    False,
    False,
    params={"sessionUuid": Param("sessionUuid", "string", "path", required=True)},
)


@pytest.mark.parametrize(
    ("word", "op", "value"),
    [
        ("state=Running", "=", "Running"),
        ("state!=Running", "!=", "Running"),
        ("cpuNum>2", ">", "2"),
        ("cpuNum<2", "<", "2"),
        ("cpuNum>=2", ">=", "2"),
        ("cpuNum<=2", "<=", "2"),
        ("uuid?=a,b", "in", "a,b"),
        ("name!?=a,b", "not in", "a,b"),
        ("name~=web", "like", "%web%"),  # no wildcard given: anywhere, as ZStack's CLI does
        ("name~=web%", "like", "web%"),
        ("name!~=web", "not like", "%web%"),
        ("hostUuid=null", "is null", None),
        ("hostUuid!=null", "is not null", None),
        ("__systemTag__=hostname::vm1", "=", "hostname::vm1"),
        ("vmNics.ip=10.0.0.2", "=", "10.0.0.2"),
        ("description=a=b", "=", "a=b"),
    ],
)
def test_conditions_reach_the_node_as_meant(word: str, op: str, value: str | None) -> None:
    key, cli_op, raw = split_arg(word)
    parsed = parse_rest_condition(condition(key, cli_op, raw))
    assert (parsed.name, parsed.op, parsed.value) == (key, op, value)


def test_a_query_takes_conditions_and_reserved_keys() -> None:
    request = build(
        QUERY_ZONE,
        [
            "state=Enabled",
            "fields=uuid,name",
            "limit=5",
            "start=10",
            "replyWithCount=True",
            "sortBy=name",
            "sortDirection=desc",
        ],
    )
    assert (request.method, request.path, request.body) == ("GET", "/zstack/v1/zones", None)
    assert request.query == [
        ("q", "state=Enabled"),
        ("fields", "uuid,name"),
        ("limit", "5"),
        ("start", "10"),
        ("replyWithCount", "true"),
        ("sort", "-name"),
    ]


@pytest.mark.parametrize(
    "words",
    [
        ["limit=-1"],
        ["limit=ten"],
        ["count=yes"],
        ["sortDirection=down"],
        ["sortDirection=desc"],
        ["state"],
        ["=x"],
    ],
)
def test_bad_query_words_are_usage_errors(words: list[str]) -> None:
    with pytest.raises(UsageError):
        build(QUERY_ZONE, words)


def test_create_body_has_typed_parameters() -> None:
    request = build(
        CREATE_VM,
        [
            "name=vm 1",
            "cpuNum=2",
            "l3NetworkUuids=a, b",
            "dataDiskSizes=1,2",
            "strategy=JustCreate",
            "clientInfo={'a': [1]}",
            "isPaused=FALSE",
        ],
    )
    assert (request.method, request.path) == ("POST", "/zstack/v1/vm-instances")
    assert request.body == {
        "params": {
            "name": "vm 1",
            "cpuNum": 2,
            "l3NetworkUuids": ["a", "b"],
            "dataDiskSizes": [1, 2],
            "strategy": "JustCreate",
            "clientInfo": {"a": [1]},
            "isPaused": False,
        }
    }


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["l3NetworkUuids=a"], "needs name="),
        (["name=x", "l3NetworkUuids=a", "nmae=y"], "no parameter 'nmae'"),
        (["name=x", "l3NetworkUuids=a", "cpuNum=two"], "whole number"),
        (["name=x", "l3NetworkUuids=a", "strategy=Later"], "one of InstantStart, JustCreate"),
        (["name=x", "l3NetworkUuids=a", "clientInfo={"], "JSON or a Python literal"),
        (["name=x", "l3NetworkUuids=a", "name=y"], "twice"),
        (["name=x", "l3NetworkUuids=a", "cpuNum>2"], "only queries"),
    ],
)
def test_bad_parameters_are_usage_errors(words: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build(CREATE_VM, words)


def test_path_variables_fill_the_path_not_the_body() -> None:
    request = build(START_VM, ["uuid=abc/d", "hostUuid=h1"])
    assert request.path == "/zstack/v1/vm-instances/abc%2Fd/actions"
    assert request.body == {"startVmInstance": {"hostUuid": "h1"}}
    assert build(START_VM, ["uuid=v"]).body == {"startVmInstance": {}}


def test_delete_parameters_go_in_the_query_string() -> None:
    request = build(DELETE_ZONE, ["uuid=z", "deleteMode=Enforcing"])
    assert (request.method, request.path, request.body) == ("DELETE", "/zstack/v1/zones/z", None)
    assert request.query == [("deleteMode", "Enforcing")]


def test_log_in_hashes_the_password_and_log_out_uses_the_session() -> None:
    body = build(LOG_IN, ["accountName=admin", "password=secret"]).body
    assert body == {
        "logInByAccount": {
            "accountName": "admin",
            "password": hashlib.sha512(b"secret").hexdigest(),
        }
    }
    assert build(LOG_OUT, [], {"sessionUuid": "s1"}).path == "/zstack/v1/accounts/sessions/s1"
    with pytest.raises(UsageError, match="sessionUuid="):
        build(LOG_OUT, [])


def test_other_passwords_travel_as_given() -> None:
    add_host = Action(
        "AddKVMHost",
        "POST",
        "/zstack/v1/hosts/kvm",
        True,
        False,
        True,
        body_key="params",
        params={"password": Param("password", "string", "body")},
    )
    assert build(add_host, ["password=ssh-pw"]).body == {"params": {"password": "ssh-pw"}}
