"""The bundled reasoning suite from Python: the expert solves every task, through `sandgym.collect`
and the CLI; a Gymnasium episode of an interactive task; bad knobs are refused."""

import json
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym

SANDGYM = shutil.which("sandgym") or "sandgym"


def task_names():
    spec = next(s for s in sandgym.list_envs() if s["id"] == "reasoning-v0")
    return [name for name, value in spec["info"]["default_config"].items() if isinstance(value, dict)]


def test_every_task_is_listed():
    names = task_names()
    for required in [
        "basic_arithmetic",
        "chain_sum",
        "gcd",
        "lcm",
        "prime_factorization",
        "base_conversion",
        "number_sorting",
        "letter_counting",
        "countdown",
        "puzzle24",
        "mini_sudoku",
        "maze",
        "tower_of_hanoi",
        "n_queens",
        "knights_knaves",
        "shortest_path",
    ]:
        assert required in names


@pytest.mark.parametrize("difficulty", [1, 3, 5])
def test_expert_solves_every_task(difficulty):
    for name in task_names():
        result = sandgym.collect(
            "reasoning-v0", episodes=20, seed=100, max_turns=400, config={"task": name, "difficulty": difficulty}
        )
        assert result.episodes == 20
        assert result.success_rate == 1.0, (name, difficulty)
        task_ids = pa.table(result.table).column("task_id").to_pylist()
        assert all(task_id.startswith(f"reasoning-{name}-") for task_id in task_ids)


def test_cli_collect_over_the_default_mix(tmp_path):
    out = subprocess.run(
        [
            SANDGYM,
            "collect",
            "--env",
            "reasoning",
            "-n",
            "48",
            "--policy",
            "expert",
            "-o",
            str(tmp_path / "out"),
            "--config",
            json.dumps({"difficulty": 2}),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "success rate: 1.000" in out.stdout
    table = pq.read_table(tmp_path / "out")
    assert table.num_rows == 48
    assert all(table.column("success").to_pylist())


def test_hanoi_episode_through_gymnasium():
    env = sandgym.make("reasoning-v0", task="tower_of_hanoi")
    obs, info = env.reset(seed=0)
    text = obs[-1]["content"] if isinstance(obs, list) else str(obs)
    assert "Tower of Hanoi" in json.dumps(text)
    illegal = '<tool_call>{"name": "move_disk", "arguments": {"from": 9, "to": 1}}</tool_call>'
    obs, reward, terminated, truncated, info = env.step(illegal)
    assert reward == 0.0 and not terminated
    assert "peg number 1-3" in json.dumps(obs)
    env.close()


def test_bad_knob_is_refused():
    with pytest.raises(sandgym.SandgymError, match="gcd.max_value"):
        sandgym.make("reasoning-v0", task="gcd", gcd={"max_value": 0})
