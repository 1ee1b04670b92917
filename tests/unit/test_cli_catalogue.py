"""The CLI's action catalogue, built from the OpenAPI document the node generates from
its declared APIs (so the two cannot drift), and its round trip through the cache form."""

from __future__ import annotations

from typing import Any

import pytest

# Importing an API module declares its APIs; these two are enough for the cases below.
import zstackpy.services.network.l3.api
import zstackpy.services.vm.api  # noqa: F401
from zstackpy.api.http.openapi import openapi_document
from zstackpy.api.http.rest import route_table
from zstackpy.api.messages import all_apis
from zstackpy.cli.catalogue import Catalogue, from_openapi


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi_document(route_table(all_apis()))


@pytest.fixture(scope="module")
def catalogue(doc: dict[str, Any]) -> Catalogue:
    return from_openapi(doc)


def test_every_declared_api_is_an_action(catalogue: Catalogue) -> None:
    declared = {cls.api.name for cls in all_apis() if cls.api is not None}
    assert declared <= set(catalogue.actions)
    # GET /<collection>/{uuid} repeats a query; it is not an action of its own.
    assert not [name for name in catalogue.actions if name.endswith("ByUuid")]


def test_an_action_on_a_shared_path_keeps_its_own_variable_and_body_key(
    catalogue: Catalogue, doc: dict[str, Any]
) -> None:
    start = catalogue.get("StartVmInstance")
    assert start is not None
    # The route is named after another API's variable; the CLI calls with StartVm's own.
    routes = [
        p for p in doc["paths"] if p.startswith("/zstack/v1/vm-instances/{") and "actions" in p
    ]
    assert routes == ["/zstack/v1/vm-instances/{vmInstanceUuid}/actions"]
    assert start.path == "/zstack/v1/vm-instances/{uuid}/actions"
    assert (start.method, start.body_key, start.is_async) == ("PUT", "startVmInstance", True)
    assert start.path_vars == ["uuid"]
    assert start.params["hostUuid"].where == "body"


def test_parameters_carry_types_requirement_and_choices(catalogue: Catalogue) -> None:
    create = catalogue.get("createvminstance")  # case-insensitive, like ZStack's CLI
    assert create is not None
    assert (create.method, create.body_key) == ("POST", "params")
    p = create.params
    assert p["name"].required
    assert p["imageUuid"].required
    assert not p["hostUuid"].required
    assert (p["l3NetworkUuids"].kind, p["l3NetworkUuids"].item_kind) == ("array", "string")
    assert p["cpuNum"].kind == "integer"  # through anyOf [integer, null]
    assert "JustCreate" in p["strategy"].choices
    assert "sessionUuid" not in p  # reserved fields are the front-end's, not the caller's


def test_queries_sessions_and_deletes(catalogue: Catalogue) -> None:
    query = catalogue.get("QueryVmInstance")
    assert query is not None
    assert (query.is_query, query.path, query.params) == (True, "/zstack/v1/vm-instances", {})
    log_in = catalogue.get("LogInByAccount")
    assert log_in is not None
    assert not log_in.needs_session
    assert log_in.body_key == "logInByAccount"
    log_out = catalogue.get("LogOut")
    assert log_out is not None
    assert log_out.path_vars == ["sessionUuid"]
    destroy = catalogue.get("DestroyVmInstance")
    assert destroy is not None
    assert destroy.method == "DELETE"
    assert destroy.params["uuid"].where == "path"


def test_uuid_parameters_find_their_resource_query(catalogue: Catalogue) -> None:
    def query(noun: str) -> str | None:
        action = catalogue.query_for(noun)
        return action.name if action else None

    assert query("vmInstance") == "QueryVmInstance"
    assert query("destHost") == "QueryHost"
    assert query("l3Network") == "QueryL3Network"
    assert query("nothingLikeIt") is None
    of_path = catalogue.query_of_path("/zstack/v1/vm-instances/{uuid}/actions")
    assert of_path is not None
    assert of_path.name == "QueryVmInstance"


def test_the_cache_form_round_trips(catalogue: Catalogue) -> None:
    again = Catalogue.from_json(catalogue.to_json())
    assert again.actions == catalogue.actions
