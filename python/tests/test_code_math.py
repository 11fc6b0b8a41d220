"""code-math from Python: the expert solves generated tasks through `sandgym.collect` and the CLI
(`sandgym collect --env code-math --policy expert`), GSM8K rows load from a task file, and a Gymnasium
episode keeps interpreter state across `python` calls and survives a runaway cell."""

import json
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest
import sandgym

SANDGYM = shutil.which("sandgym") or "sandgym"
KINDS = [
    "sum_multiples",
    "nth_prime",
    "modpow",
    "digit_sum",
    "harmonic",
    "collatz",
    "savings",
    "population",
    "split_bill",
]


def test_env_is_listed_with_its_kinds():
    spec = next(s for s in sandgym.list_envs() if s["id"] == "code-math-v0")
    assert spec["info"]["default_config"]["kind"] == "any"
    assert [tool["function"]["name"] for tool in spec["info"]["tools"]] == ["python", "submit"]


@pytest.mark.parametrize("difficulty", [1, 3])
def test_expert_solves_every_kind(difficulty):
    for kind in KINDS:
        result = sandgym.collect("code-math-v0", episodes=4, seed=10, config={"kind": kind, "difficulty": difficulty})
        assert result.episodes == 4
        assert result.success_rate == 1.0, (kind, difficulty)


def test_cli_collect_expert_and_gsm8k_tasks(tmp_path):
    out = subprocess.run(
        [SANDGYM, "collect", "--env", "code-math", "-n", "27", "--policy", "expert", "-o", str(tmp_path / "gen")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "success rate: 1.000" in out.stdout
    assert pq.read_table(tmp_path / "gen").num_rows == 27

    rows = [
        {
            "question": "Natalia sold clips to 48 friends in April and half as many in May. How many in all?",
            "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\nAltogether 48+24 = <<48+24=72>>72.\n#### 72",
        },
        {
            "question": "Weng earns $12 an hour. How much did she earn for 50 minutes of babysitting?",
            "answer": "12/60 = $<<12/60=0.2>>0.2 per minute.\n0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
        },
    ]
    tasks = tmp_path / "gsm8k.jsonl"
    tasks.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = subprocess.run(
        [
            SANDGYM,
            "collect",
            "--env",
            "code-math",
            "--tasks",
            str(tasks),
            "-n",
            "2",
            "--policy",
            "expert",
            "-o",
            str(tmp_path / "gsm"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    table = pq.read_table(tmp_path / "gsm")
    assert table.num_rows == 2
    assert all(table.column("success").to_pylist())


def test_gymnasium_episode_keeps_state_and_survives_a_runaway_cell():
    env = sandgym.make("code-math-v0", max_turns=8)
    env.reset(seed=3)

    def python(code):
        call = {"id": "call_0", "name": "python", "arguments": json.dumps({"code": code})}
        obs, reward, terminated, truncated, info = env.step({"content": "", "tool_calls": [call]})
        assert not terminated and not truncated
        return obs

    first = python("x = 41\nx + 1")
    assert "42" in json.dumps(first)
    runaway = python("while True:\n    pass")
    assert "TimeoutError" in json.dumps(runaway)
    assert "41" in json.dumps(python("x"))
