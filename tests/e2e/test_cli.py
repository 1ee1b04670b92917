"""The ``zstackpy`` command as a newcomer runs it (embedded mode, real processes)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.support.processes import node_env, run_cli, start_node_process


async def test_help_lists_the_commands() -> None:
    code, out, _ = await run_cli("--help", env=node_env())
    assert code == 0
    assert "run" in out
    assert "db" in out


async def test_run_on_an_empty_database_says_how_to_fix_it(tmp_path: Path) -> None:
    code, _, err = await run_cli("run", "--port", "0", env=node_env(ZSTACK_DATA_DIR=str(tmp_path)))
    assert code == 1
    assert "DB.1001" in err
    assert "zstackpy db upgrade" in err


async def test_upgrade_then_run_serves_health(tmp_path: Path) -> None:
    env = node_env(ZSTACK_DATA_DIR=str(tmp_path))
    code, out, err = await run_cli("db", "upgrade", env=env)
    assert code == 0, err
    assert "schema revision" in out
    assert (tmp_path / "zstack.db").is_file()
    node = await start_node_process(env, tmp_path / "node.log")
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{node.port}/health") as resp,
        ):
            body = await resp.json()
            assert resp.status == 200
        assert body["uuid"] == node.uuid
        assert body["state"] == "ready"
    finally:
        code = await node.terminate()
    assert code == 0, (tmp_path / "node.log").read_text()


async def test_bad_settings_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = await run_cli(
        "--config", str(tmp_path / "missing.toml"), "db", "current", env=node_env()
    )
    assert code == 2
    assert "missing.toml" in err
