"""Chains from YAML: several documents, extensions, and errors that name file and line."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zstackpy.core.errors import KernelErr, ZError
from zstackpy.core.flow import Flow, FlowDefinitionError, FlowFactory, FlowRegistry


@dataclass
class Ctx:
    events: list[str] = field(default_factory=list)


class Record(Flow[Ctx]):
    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, ctx: Ctx) -> None:
        ctx.events.append(self.name)


def registry(*flow_ids: str) -> FlowRegistry:
    reg = FlowRegistry()
    for flow_id in flow_ids:
        reg.register(flow_id, factory(flow_id))
    return reg


def factory(name: str) -> FlowFactory:
    return lambda: Record(name)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def definition_error(reg: FlowRegistry, directory: Path | None = None) -> FlowDefinitionError:
    def load_and_validate() -> None:
        if directory is not None:
            reg.load_dir(directory)
        reg.validate()

    with pytest.raises(FlowDefinitionError) as info:
        load_and_validate()
    assert isinstance(info.value, ZError)
    assert info.value.code == KernelErr.FLOW_DEFINITION
    return info.value


async def test_loads_several_documents_and_runs_nested_chain(tmp_path: Path) -> None:
    write(
        tmp_path,
        "vm.yaml",
        "chain: create-vm\n"
        "steps: [allocate-host, allocate-net]\n"
        "---\n"
        "chain: allocate-net\n"
        "description: NICs and IPs\n"
        "steps:\n"
        "  - allocate-nics\n"
        "  - allocate-ips\n"
        "---\n",
    )
    write(tmp_path, "ignored.yml", "not: [loaded")
    reg = registry("allocate-host", "allocate-nics", "allocate-ips")
    assert await asyncio.to_thread(reg.load_dir, tmp_path) == 2
    reg.validate()
    assert reg.names() == ["allocate-net", "create-vm"]
    assert reg.chain("create-vm").step_ids() == ["allocate-host", "allocate-net"]
    ctx = Ctx()
    trace = await reg.run("create-vm", ctx)
    assert ctx.events == ["allocate-host", "allocate-nics", "allocate-ips"]
    assert trace.entries[1].is_chain
    assert [c.step for c in trace.entries[1].children] == ["allocate-nics", "allocate-ips"]


def test_extend_after_before_and_append_across_plugin_dirs(tmp_path: Path) -> None:
    write(tmp_path / "core", "vm.yaml", "chain: create-vm\nsteps: [a, b, c]\n")
    write(
        tmp_path / "plugin",
        "p.yaml",
        "extend: create-vm\nafter: a\nsteps: [p1, p2]\n"
        "---\n"
        "extend: create-vm\nbefore: a\nsteps: [p0]\n"
        "---\n"
        "extend: create-vm\nsteps: [p9]\n",
    )
    # a second plugin may anchor on a step the first one inserted
    write(tmp_path / "plugin2", "q.yaml", "extend: create-vm\nbefore: p2\nsteps: [q]\n")
    reg = registry("a", "b", "c", "p0", "p1", "p2", "p9", "q")
    for sub in ("core", "plugin", "plugin2"):
        reg.load_dir(tmp_path / sub)
    reg.validate()
    assert reg.chain("create-vm").step_ids() == ["p0", "a", "p1", "q", "p2", "b", "c", "p9"]


def test_extend_anchor_missing_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "chain: create-vm\nsteps: [a, b]\n")
    bad = write(tmp_path, "b.yaml", "# plugin\nextend: create-vm\nafter: nope\nsteps: [a]\n")
    err = definition_error(registry("a", "b"), tmp_path)
    assert err.description.startswith(f"{bad}:3: ")
    assert "'nope' is not in chain 'create-vm'" in err.description
    assert (err.details["file"], err.details["line"]) == (str(bad), 3)


def test_extend_ambiguous_anchor_is_an_error(tmp_path: Path) -> None:
    bad = write(
        tmp_path, "a.yaml", "chain: c\nsteps: [a, a]\n---\nextend: c\nafter: a\nsteps: [a]\n"
    )
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{bad}:5: ")
    assert "more than once" in err.description


def test_extend_unknown_chain(tmp_path: Path) -> None:
    bad = write(tmp_path, "a.yaml", "extend: ghost\nsteps: [a]\n")
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{bad}:1: ")
    assert "ghost" in err.description


def test_unknown_step_names_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "vm.yaml", "chain: create-vm\nsteps:\n  - a\n  - allocate-gpu\n")
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{bad}:4: ")
    assert "'allocate-gpu'" in err.description


def test_cycle_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "chain: one\nsteps: [a, two]\n")
    bad = write(
        tmp_path, "b.yaml", "chain: two\nsteps:\n  - three\n---\nchain: three\nsteps: [one]\n"
    )
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{bad}:6: ")
    assert "one -> two -> three -> one" in err.description


def test_self_inclusion_is_a_cycle(tmp_path: Path) -> None:
    bad = write(tmp_path, "a.yaml", "chain: one\nsteps: [a, one]\n")
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{bad}:2: ")


def test_duplicate_chain_names_point_at_both(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "chain: c\nsteps: [a]\n")
    second = write(tmp_path, "b.yaml", "\n\nchain: c\nsteps: [a]\n")
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{second}:3: ")
    assert f"{first}:1" in err.description


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "a.yaml", "chain: c\nsteps: [a, b\nnext: x\n")
    err = definition_error(registry("a", "b"), tmp_path)
    assert err.description.startswith(f"{bad}:")
    assert err.details["line"] in (3, 4)  # where the parser noticed the missing ]
    assert "malformed YAML" in err.description


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("chain: c\nstep: [a]\n", 2, "unknown key 'step'"),
        ("chain: c\n", 1, "no 'steps'"),
        ("chain: Create_VM\nsteps: [a]\n", 1, "not kebab-case"),
        ("chain: c\nsteps: a\n", 2, "must be a list"),
        ("chain: c\nsteps: [a, {x: 1}]\n", 2, "'step' must be a name"),
        ("- a\n- b\n", 1, "must be a mapping"),
        ("steps: [a]\n", 1, "exactly one of"),
        ("extend: c\nafter: a\nbefore: a\nsteps: [a]\n", 3, "not both"),
        ("chain: c\nchain: d\nsteps: [a]\n", 2, "duplicate key"),
    ],
)
def test_bad_documents(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    bad = write(tmp_path, "bad.yaml", text)
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{bad}:{line}: ")
    assert fragment in err.description


def test_chain_name_may_not_be_a_flow_id(tmp_path: Path) -> None:
    bad = write(tmp_path, "a.yaml", "chain: a\nsteps: [a]\n")
    err = definition_error(registry("a"), tmp_path)
    assert err.description.startswith(f"{bad}:1: ")


def test_register_rejects_duplicates_and_bad_ids() -> None:
    reg = registry("a")
    with pytest.raises(FlowDefinitionError, match="registered twice"):
        reg.register("a", lambda: Record("a"))
    with pytest.raises(FlowDefinitionError, match="kebab-case"):
        reg.register("AllocateHost", lambda: Record("x"))


def test_load_dir_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FlowDefinitionError, match="not a directory"):
        FlowRegistry().load_dir(tmp_path / "missing")


async def test_unknown_chain_and_revalidation_after_register(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "chain: c\nsteps: [a, late]\n")
    reg = registry("a")
    await asyncio.to_thread(reg.load_dir, tmp_path)
    definition_error(reg)
    reg.register("late", factory("late"))
    ctx = Ctx()
    await reg.run("c", ctx)  # definitions changed: run() re-validates
    assert ctx.events == ["a", "late"]
    with pytest.raises(FlowDefinitionError, match="no chain named 'ghost'"):
        reg.chain("ghost")
