"""The shell's Tab completion, on a fixed catalogue and a stand-in for the node's live
answers: action names, parameter names, a query's fields, choices, UUIDs by uuid or name."""

from __future__ import annotations

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from tests.unit.test_cli_args import CREATE_VM, DELETE_ZONE, QUERY_ZONE, START_VM
from zstackpy.cli.catalogue import Action, Catalogue
from zstackpy.cli.client import Client
from zstackpy.cli.completion import CliCompleter, LiveLookup, Resource

QUERY_VM = Action("QueryVmInstance", "GET", "/zstack/v1/vm-instances", False, True, True)
QUERY_L3 = Action("QueryL3Network", "GET", "/zstack/v1/l3-networks", False, True, True)
CATALOGUE = Catalogue(
    {a.name: a for a in (QUERY_ZONE, QUERY_VM, QUERY_L3, CREATE_VM, START_VM, DELETE_ZONE)}
)


class FakeLive(LiveLookup):
    """What a node with two zones, one VM and one L3 network would answer."""

    def __init__(self) -> None:
        super().__init__(Client("127.0.0.1", 1))
        self.asked: list[str] = []

    def resources(self, query: Action) -> list[Resource]:
        self.asked.append(query.name)
        return {
            "QueryZone": [Resource("a1" * 16, "east"), Resource("b2" * 16, "west")],
            "QueryVmInstance": [Resource("c3" * 16, "web-1")],
            "QueryL3Network": [Resource("d4" * 16, "private"), Resource("e5" * 16, "public")],
        }.get(query.name, [])

    def fields(self, query: Action) -> list[str]:
        return ["name", "state", "uuid"] if query.name == "QueryZone" else []


def complete(text: str, live: LiveLookup | None = None) -> list[str]:
    completer = CliCompleter(lambda: CATALOGUE, live or FakeLive())
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    # What the line reads after choosing each completion.
    return [text[: len(text) + c.start_position] + c.text for c in found]


def test_action_names_and_built_ins() -> None:
    assert complete("Query") == ["QueryL3Network", "QueryVmInstance", "QueryZone"]
    assert complete("startvm") == ["StartVmInstance"]
    assert complete("ex") == ["exit"]
    assert complete("help Sta") == ["help StartVmInstance"]
    assert complete("Nope ") == []


def test_parameter_names_not_yet_given() -> None:
    assert complete("CreateVmInstance name=x cpu") == ["CreateVmInstance name=x cpuNum="]
    assert "name=" not in [c.split()[-1] for c in complete("CreateVmInstance name=x ")]
    assert complete("StartVmInstance ") == ["StartVmInstance uuid=", "StartVmInstance hostUuid="]


def test_a_query_completes_its_fields_and_reserved_keys() -> None:
    assert complete("QueryZone st") == ["QueryZone state=", "QueryZone start="]
    assert complete("QueryZone fields=uuid,na") == ["QueryZone fields=uuid,name"]


def test_choices_and_booleans() -> None:
    assert complete("CreateVmInstance strategy=J") == ["CreateVmInstance strategy=JustCreate"]
    assert complete("CreateVmInstance isPaused=t") == ["CreateVmInstance isPaused=true"]
    assert complete("DeleteZone deleteMode=E") == ["DeleteZone deleteMode=Enforcing"]


def test_uuids_by_uuid_prefix_or_name() -> None:
    live = FakeLive()
    assert complete("DeleteZone uuid=a1", live) == ["DeleteZone uuid=" + "a1" * 16]
    assert complete("DeleteZone uuid=WE", live) == ["DeleteZone uuid=" + "b2" * 16]
    # ``uuid`` of an action is its own resource's: StartVmInstance's path is a VM's.
    assert complete("StartVmInstance uuid=web", live) == ["StartVmInstance uuid=" + "c3" * 16]
    # ``<noun>Uuids``: a list; the item after the last comma is completed.
    line = "CreateVmInstance l3NetworkUuids=" + "d4" * 16 + ",pub"
    assert complete(line, live) == [line[: -len("pub")] + "e5" * 16]
    assert live.asked == ["QueryZone", "QueryZone", "QueryVmInstance", "QueryL3Network"]


def test_an_unreachable_node_completes_nothing_and_raises_nothing() -> None:
    # Port 1 on loopback: refused at once.
    assert complete("DeleteZone uuid=", LiveLookup(Client("127.0.0.1", 1))) == []
