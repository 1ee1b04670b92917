"""The KVM agent's task journal (agents/kvm/journal.py) and the agent's settings."""

from __future__ import annotations

import json
from pathlib import Path

from agents.kvm.config import load_config
from agents.kvm.journal import FileJournal
from zstackpy.services.kvm.playbook import REDACTED, redact


async def test_a_new_process_recalls_finished_results_and_calls_running_tasks_lost(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "tasks.jsonl"
    before = FileJournal(path)
    await before.load()
    assert before.recall("t1") is None
    await before.started("t1", "/vm/start")
    await before.finished("t1", {"success": True, "error": None})
    await before.started("t2", "/vm/stop")  # the process died here
    with path.open("a") as f:
        f.write('{"task": "t3", "pa')  # a line cut short by the crash

    after = FileJournal(path)
    await after.load()
    assert after.recall("t1") == {"success": True, "error": None}
    lost = after.recall("t2")
    assert lost is not None
    assert lost["success"] is False
    assert lost["details"] == {"lost": True, "path": "/vm/stop"}
    assert after.recall("t3") is None
    # Compacted: one line per task; a third process still knows both.
    assert len(path.read_text().splitlines()) == 2
    third = FileJournal(path)
    await third.load()
    assert third.recall("t2") == lost


async def test_old_entries_are_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"task": "old", "path": "/x", "at": 1.0, "result": {}}) + "\n")
    journal = FileJournal(path, max_age=60)
    await journal.load()
    assert journal.recall("old") is None


def test_agent_settings_from_file_environment_and_flags(tmp_path: Path) -> None:
    file = tmp_path / "agent.toml"
    file.write_text('port = 7171\nlibvirt_uri = "test:///default"\nhost = "10.0.0.5"\n')
    env = {"ZSTACK_KVM_AGENT_PORT": "7272", "ZSTACK_KVM_AGENT_PHYSICAL_INTERFACES": "eth0,eth1"}
    config = load_config(file, env, host="127.0.0.1", state_dir=None)
    assert config.port == 7272
    assert config.host == "127.0.0.1"
    assert config.libvirt_uri == "test:///default"
    assert config.physical_interfaces == ("eth0", "eth1")


def test_redact_hides_every_secret_even_inside_longer_ones() -> None:
    text = "token=abc123 password=abc pair=abc123abc"
    assert redact(text, ["abc", "abc123", ""]) == (
        f"token={REDACTED} password={REDACTED} pair={REDACTED}{REDACTED}"
    )
