import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import sandgym

SANDGYM = shutil.which("sandgym") or "sandgym"


def run(*args, cwd=None):
    return subprocess.run([SANDGYM, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_envs_lists_bundled_envs_and_tools():
    out = run("envs")
    assert out.returncode == 0, out.stderr
    assert "countdown-v0" in out.stdout and "parity-v0" in out.stdout
    assert "calc(expression)" in out.stdout


def test_collect_defaults_then_inspect(tmp_path):
    out = run("collect", "-n", "10", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "success rate: 1.000" in out.stdout
    assert "steps/s" in out.stdout
    table = pq.read_table(tmp_path / "sandgym-out")
    assert table.num_rows == 10 * len(sandgym.list_envs())
    shown = run("inspect", str(tmp_path / "sandgym-out"))
    assert shown.returncode == 0, shown.stderr
    assert "schema:" in shown.stdout and "messages" in shown.stdout
    assert "--- SYSTEM ---" in shown.stdout and "--- ASSISTANT ---" in shown.stdout


def test_collect_wasm_by_path_and_bad_task_file(tmp_path, guest_dir):
    out = run("collect", "--env", str(guest_dir / "countdown.wasm"), "-n", "3", "-o", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"numbers": [1, 2], "target": 3}\nnot json\n')
    out = run("collect", "--env", "countdown-v0", "--tasks", str(bad))
    assert out.returncode == 1
    assert "tasks.jsonl:2" in out.stderr


def test_unknown_command_and_env_fail_cleanly():
    assert run("frobnicate").returncode == 2
    out = run("collect", "--env", "nope", "-n", "1")
    assert out.returncode == 1 and "unknown env" in out.stderr


def test_killed_run_keeps_complete_parts_and_resumes(tmp_path):
    import signal
    import time

    out = tmp_path / "out"
    args = [SANDGYM, "collect", "--env", "countdown-v0", "-n", "60000", "-o", str(out), "--threads", "1", "-q"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    parts = sorted(out.glob("part-*.parquet"))
    assert parts, "a complete part was published before the kill"
    kept = pq.read_table(out).num_rows  # every visible part is complete and readable
    assert kept >= 10_000 and kept % 10_000 == 0
    done = run("collect", "--env", "countdown-v0", "-n", "60000", "-o", str(out), "--resume", "-q")
    assert done.returncode == 0, done.stderr
    assert f"resuming: {kept} episodes" in done.stderr
    table = pq.read_table(out, columns=["episode_id", "success"])
    ids = table.column("episode_id").to_pylist()
    assert len(ids) == 60_000 and len(set(ids)) == 60_000
    assert all(table.column("success").to_pylist())


def test_json_array_tasks_with_split_and_path_config(tmp_path):
    import json

    tasks = [{"id": str(i), "bits": bits} for i, bits in enumerate(["0110", "111", "10", "0"])]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["0", "2"], "test": ["1", "3"]}))
    (tmp_path / "reward.json").write_text('"cot"')
    out = run(
        "collect",
        "--env",
        "parity-v0",
        "-n",
        "2",
        "--tasks",
        str(tmp_path / "tasks.json"),
        "--split",
        "test",
        "--split-file",
        str(tmp_path / "splits.json"),
        "--config",
        json.dumps({"reward": {"$path": str(tmp_path / "reward.json")}}),
        "-o",
        str(tmp_path / "out"),
    )
    assert out.returncode == 0, out.stderr
    table = pq.read_table(tmp_path / "out")
    played = sorted(json.loads(t)["bits"] for t in table.column("task").to_pylist())
    assert played == ["0", "111"]
    assert all(json.loads(i).get("cot_correct") is True for i in table.column("info").to_pylist())
    bad = run("collect", "--env", "parity-v0", "--config", json.dumps({"reward": {"$path": "/nope.json"}}))
    assert bad.returncode == 1 and "/nope.json" in bad.stderr


def test_load_tasks_from_python(tmp_path):
    import json

    import sandgym

    (tmp_path / "tasks.json").write_text(json.dumps([{"id": "a", "bits": "1"}, {"id": "b", "bits": "0"}]))
    (tmp_path / "splits.json").write_text(json.dumps({"test": ["b"]}))
    tasks = sandgym.load_tasks(tmp_path / "tasks.json", split="test", split_file=tmp_path / "splits.json")
    assert tasks == [{"id": "b", "bits": "0"}]
    result = sandgym.collect("parity-v0", episodes=1, tasks=tasks)
    assert result.success_rate == 1.0


def test_cli_and_python_collect_the_same_rows(tmp_path):
    # One run path: the same config through `sandgym collect` and `sandgym.collect` gives the same rows.
    out = run(
        "collect", "--env", "countdown-v0", "--env", "parity-v0", "-n", "4", "--seed", "3", "--policy", "random",
        "--max-turns", "5", "--group-size", "2", "--advantage", "dr-grpo", "-o", str(tmp_path / "cli"), "-q",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = sandgym.collect(
        ["countdown-v0", "parity-v0"], 4, seed=3, policy="random", max_turns=5, group_size=2, advantage="dr-grpo"
    )
    columns = ["episode_id", "env_id", "seed", "sample_seed", "group_id", "task", "messages", "turn_rewards",
               "success", "total_reward", "advantage", "num_turns", "error_kind"]  # fmt: skip
    cli = pq.read_table(tmp_path / "cli").select(columns).to_pylist()
    python = pa.table(result.table).select(columns).to_pylist()
    assert len(python) == 16
    assert sorted(cli, key=lambda r: r["episode_id"]) == sorted(python, key=lambda r: r["episode_id"])
