import shutil
import subprocess

import pyarrow.parquet as pq

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
    assert table.num_rows == 20
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
