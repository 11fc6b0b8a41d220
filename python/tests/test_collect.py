import json
import os
import resource
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym


def test_collect_in_memory_is_arrow_zero_copy():
    result = sandgym.collect(["countdown-v0", "parity-v0"], episodes=20, seed=7)
    assert result.episodes == 40 and result.success_rate == 1.0
    table = pa.table(result.table)
    assert table.num_rows == 40
    assert table.column("success").to_pylist() == [True] * 40
    messages = table.column("messages").to_pylist()
    assert messages[0][0]["role"] == "system"
    polars = pytest.importorskip("polars")
    frame = polars.DataFrame(result.table)
    assert frame.height == 40


def test_collect_to_parquet_read_by_pyarrow_datasets_and_polars(tmp_path):
    ids = [spec["id"] for spec in sandgym.list_envs()]
    rows = 25 * len(ids)
    result = sandgym.collect(episodes=25, out_dir=tmp_path, policy="random", seed=3, max_turns=4)
    assert result.rows == rows and result.files
    table = pq.read_table(tmp_path)
    assert table.num_rows == rows
    assert set(table.column("env_id").to_pylist()) == set(ids)
    assert table.schema.field("messages").type.value_type.field("tool_calls") is not None
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "*.parquet"), split="train")
    assert len(ds) == rows
    row = ds[0]
    assert row["messages"][0]["role"] == "system"
    assert isinstance(row["turn_rewards"], list)
    polars = pytest.importorskip("polars")
    assert polars.read_parquet(tmp_path / "*.parquet").height == rows
    back = pa.table(sandgym.read_trajectories(tmp_path))
    assert back.num_rows == rows


def test_tasks_are_played_in_turn():
    tasks = [{"bits": "0110"}, {"bits": "111"}]
    result = sandgym.collect("parity-v0", episodes=4, tasks=tasks)
    table = pa.table(result.table)
    assert [t for t in table.column("task").to_pylist()] == [
        table.column("task").to_pylist()[0],
        table.column("task").to_pylist()[1],
    ] * 2
    assert table.column("success").to_pylist() == [True] * 4


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(sandgym.errors.UnknownEnvError):
        sandgym.collect("no-such-env", episodes=1)
    with pytest.raises(sandgym.errors.InvalidArgumentError):
        sandgym.collect("parity-v0", episodes=1, policy="clever")


def test_arrow_export_is_zero_copy():
    result = sandgym.collect("parity-v0", episodes=5)
    first = pa.table(result.table).column("total_reward").chunk(0).buffers()[1].address
    second = pa.table(result.table).column("total_reward").chunk(0).buffers()[1].address
    # Both imports point at the same Rust-owned buffer: nothing was copied.
    assert first == second


# Hostile modes and the error kinds their episodes may end with (empty: the episode behaves).
HOSTILE_KINDS = {
    "panic": ["guest_trap"],
    "loop": ["out_of_fuel"],
    "membomb": ["memory_limit"],
    "recursion": ["stack_overflow", "guest_trap"],
    "exit": ["guest_exit"],
    "badjson": ["malformed_output"],
    "ok": [],
}

_UNDER_LIMIT = """
import json, sys
import pyarrow as pa
import sandgym
from sandgym import _core

path, modes = sys.argv[1], json.loads(sys.argv[2])
tasks = [{"mode": mode} for mode in modes]
result = sandgym.collect(path, episodes=6 * len(tasks), tasks=tasks, policy="random",
                         fuel=50_000_000, memory_mb=32, threads=2)
table = pa.table(result.table)
rows = [[json.loads(task)["mode"], kind]
        for task, kind in zip(table.column("task").to_pylist(), table.column("error_kind").to_pylist())]
print(json.dumps({"engine": _core._engine_info(), "episodes": result.episodes, "rows": rows}))
"""


def test_collect_with_trapping_guests_under_ulimit_v(guest_dir):
    """Issue 13: under ``ulimit -v 16000000`` every trap's replacement instance used to be refused (4 GiB of
    address space each) and recorded as ``invalid_module``. The limit is process-wide, so it is set in a child."""
    limit = 16_000_000 * 1024

    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

    env = {k: v for k, v in os.environ.items() if k != "SANDGYM_POOL_SLOTS"}
    out = subprocess.run(
        [sys.executable, "-c", _UNDER_LIMIT, str(guest_dir / "hostile.wasm"), json.dumps(list(HOSTILE_KINDS))],
        preexec_fn=set_limit,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    engine = report["engine"]
    assert engine["address_space_limit"] == limit and engine["allocator"] == "on_demand", engine
    assert engine["memory_reservation"] == 1 << 30, engine
    rows = report["rows"]
    assert report["episodes"] == len(rows) == 6 * len(HOSTILE_KINDS)
    for mode, kind in rows:
        assert (kind in HOSTILE_KINDS[mode]) if kind else not HOSTILE_KINDS[mode], (mode, kind, rows)
