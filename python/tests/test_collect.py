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
