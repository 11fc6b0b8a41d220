"""tau-bench envs: generated tasks, the original data (when present), bad tool calls."""

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym

TAU_IDS = [spec["id"] for spec in sandgym.list_envs() if spec["id"].startswith("tau-")]
DATA = Path(os.environ.get("SANDGYM_TAU_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "tau-bench"))
DB_FILES = {"tau-retail-v0": "v1/retail", "tau-airline-v0": "v1/airline"}
TASKS = {"tau-retail-v0": "tau2/retail", "tau-airline-v0": "tau2/airline"}

pytestmark = pytest.mark.skipif(not TAU_IDS, reason="tau envs are not bundled in this build")


@pytest.mark.parametrize("env_id", TAU_IDS)
def test_expert_solves_generated_tasks_and_random_rarely_does(env_id):
    expert = sandgym.collect(env_id, episodes=60, policy="expert", max_turns=60)
    assert expert.success_rate == 1.0, expert
    random = sandgym.collect(env_id, episodes=200, policy="random", max_turns=20)
    rewards = pa.table(random.table).column("total_reward").to_pylist()
    assert random.errors == 0
    assert random.success_rate < 0.5
    assert len(set(rewards)) > 1 or random.success_rate == 0.0


@pytest.mark.parametrize("env_id", TAU_IDS)
def test_bad_tool_calls_are_error_observations(env_id):
    env = sandgym.make(env_id)
    env.reset(seed=0)
    for call in [
        {"name": "no_such_tool", "arguments": "{}"},
        {"name": "get_user_details", "arguments": "{}"},
        {"name": "get_user_details", "arguments": '{"user_id": 5}'},
        {"name": "get_user_details", "arguments": '{"user_id": "nobody_0000", "extra": 1}'},
        {"name": "get_user_details", "arguments": "{not json"},
    ]:
        obs, reward, terminated, truncated, _ = env.step({"content": "", "tool_calls": [{"id": "c", **call}]})
        assert obs[0]["role"] == "tool" and "rror" in obs[0]["content"], (call, obs)
        assert not terminated and reward == 0.0


@pytest.mark.skipif(not DATA.is_dir(), reason="original tau-bench data not available")
@pytest.mark.parametrize("env_id", TAU_IDS)
def test_original_tasks_with_imported_db(env_id, tmp_path):
    tasks = sandgym.load_tasks(DATA / TASKS[env_id] / "tasks.json")
    config = {"db": {"$path": str(DATA / DB_FILES[env_id])}}
    result = sandgym.collect(env_id, episodes=len(tasks), tasks=tasks, config=config, max_turns=80, out_dir=tmp_path)
    assert result.errors == 0
    assert result.success_rate == 1.0, f"{result.successes}/{result.episodes}"
    assert pq.read_table(tmp_path).num_rows == len(tasks)
    test = sandgym.load_tasks(
        DATA / TASKS[env_id] / "tasks.json", split="test", split_file=DATA / TASKS[env_id] / "split_tasks.json"
    )
    assert 0 < len(test) < len(tasks)
    assert all(json.dumps(t) for t in test)


@pytest.mark.parametrize("env_id", TAU_IDS)
def test_fork_mid_episode_continues_identically(env_id):
    env = sandgym.make(env_id)
    env.reset(seed=3)
    for _ in range(2):
        env.step(env.expert_action())
    snapshot = env.snapshot()
    fork = env.fork()
    outcomes = []
    for branch in (env, fork):
        trace = []
        while True:
            obs, reward, terminated, truncated, info = branch.step(branch.expert_action())
            trace.append(json.dumps([obs, reward, terminated, truncated, info]))
            if terminated or truncated:
                break
        outcomes.append(trace)
    assert outcomes[0] == outcomes[1]
    assert json.loads(outcomes[0][-1])[1] == 1.0
    env.restore(snapshot)
    replay = []
    while True:
        obs, reward, terminated, truncated, info = env.step(env.expert_action())
        replay.append(json.dumps([obs, reward, terminated, truncated, info]))
        if terminated or truncated:
            break
    assert replay == outcomes[0]
