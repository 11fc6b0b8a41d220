"""User-simulator mode of the tau envs: user policies in collect, user turns in SandgymEnv."""

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
import sandgym

TAU_IDS = [spec["id"] for spec in sandgym.list_envs() if spec["id"].startswith("tau-")]
DATA = Path(os.environ.get("SANDGYM_TAU_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "tau-bench"))
DB_FILES = {"tau-retail-v0": "v1/retail", "tau-airline-v0": "v1/airline"}
TASKS = {"tau-retail-v0": "tau2/retail", "tau-airline-v0": "tau2/airline"}
USER = {"mode": "user"}
STOP = "###STOP###"

pytestmark = pytest.mark.skipif(not TAU_IDS, reason="tau envs are not bundled in this build")


@pytest.mark.parametrize("env_id", TAU_IDS)
def test_expert_agent_and_scripted_user_solve_generated_tasks(env_id):
    result = sandgym.collect(env_id, episodes=30, config=USER, policy="expert", user_policy="expert")
    assert result.errors == 0 and result.success_rate == 1.0, result
    for row in pa.table(result.table).to_pylist():
        assert row["user_policy"] == "expert"
        turns = row["user_turns"]
        messages = row["messages"]
        # The user opens right after the system prompt and ends with ###STOP###; every recorded turn is
        # a user message, and the agent's `num_turns` counts only the agent's moves.
        assert turns[0] == 1 and messages[0]["role"] == "system"
        assert all(messages[i]["role"] == "user" for i in turns)
        assert messages[turns[-1]]["content"] == STOP
        assert row["num_turns"] == sum(m["role"] == "assistant" for m in messages)
        assert len(row["turn_rewards"]) == row["num_turns"] and row["final_reward"] == 1.0


@pytest.mark.parametrize("env_id", TAU_IDS)
def test_random_user_and_missing_user_policy_do_not_crash(env_id):
    random_user = sandgym.collect(env_id, episodes=40, config=USER, policy="expert", user_policy="random")
    assert random_user.errors == 0
    assert random_user.success_rate < 1.0
    both_random = sandgym.collect(env_id, episodes=40, config=USER, policy="random", user_policy="random", max_turns=20)
    assert both_random.errors == 0 and both_random.success_rate < 0.2
    # Without a user policy the episode records a clear policy error instead of guessing.
    missing = sandgym.collect(env_id, episodes=2, config=USER, policy="expert")
    rows = pa.table(missing.table).to_pylist()
    assert [r["error_kind"] for r in rows] == ["policy", "policy"]
    assert "user policy" in rows[0]["error_message"]
    # Solo mode rows have no user policy.
    solo = pa.table(sandgym.collect(env_id, episodes=1, user_policy="expert").table).to_pylist()[0]
    assert solo["user_policy"] is None and solo["user_turns"] == []


def test_recorded_turns_replay_the_episode(tmp_path):
    result = sandgym.collect("tau-retail-v0", episodes=3, config=USER, user_policy="expert", out_dir=tmp_path)
    assert result.success_rate == 1.0
    for row in pa.table(sandgym.read_trajectories(tmp_path)).to_pylist():
        env = sandgym.make("tau-retail-v0", mode="user")
        env.reset(seed=row["seed"], options={"task": json.loads(row["task"])})
        user_turns = set(row["user_turns"])
        for i, message in enumerate(row["messages"]):
            if i in user_turns:
                obs, reward, terminated, truncated, info = env.user_reply(message["content"])
            elif message["role"] == "assistant":
                action = {"content": message["content"], "tool_calls": message["tool_calls"]}
                obs, reward, terminated, truncated, info = env.step(action)
        replayed = env.conversation
        assert [m["content"] for m in replayed] == [m["content"] for m in row["messages"]]
        assert terminated and info["success"]


def test_gymnasium_env_exposes_the_user_turn_and_takes_a_reply():
    env = sandgym.make("tau-retail-v0", mode="user")
    obs, info = env.reset(seed=5)
    assert [m["role"] for m in obs] == ["system"]
    turn = info["user_turn"]
    assert turn["messages"][0]["role"] == "system" and STOP in turn["messages"][0]["content"]
    assert env.user_turn == turn
    # The agent may not act while the user is to answer; nothing changes.
    with pytest.raises(sandgym.SandgymError, match="user_step"):
        env.step({"content": "", "tool_calls": [{"id": "c", "name": "list_all_product_types", "arguments": "{}"}]})
    opening = env.expert_action()["content"]
    obs, reward, terminated, truncated, info = env.user_reply(opening)
    assert obs == [{"role": "user", "content": opening}] and not terminated and "user_turn" not in info
    with pytest.raises(sandgym.SandgymError, match="agent's turn"):
        env.user_reply("hello again")
    while True:
        if env.user_turn is not None:
            obs, reward, terminated, truncated, info = env.user_reply(env.expert_action()["content"])
        else:
            obs, reward, terminated, truncated, info = env.step(env.expert_action())
        if terminated or truncated:
            break
    assert terminated and reward == 1.0 and info["success"] and info["ended_by"] == "user_stop"


@pytest.mark.parametrize("env_id", TAU_IDS)
def test_python_function_plays_the_user(env_id):
    views = []
    env = None

    def user(messages):
        views.append(messages)
        return env.expert_action()["content"]

    env = sandgym.make(env_id, mode="user", user_policy=user)
    obs, info = env.reset(seed=2)
    assert [m["role"] for m in obs] == ["system", "user"] and "user_turn" not in info
    total = 0.0
    while True:
        obs, reward, terminated, truncated, info = env.step(env.expert_action())
        total += reward
        if terminated or truncated:
            break
    assert terminated and total == 1.0 and info["success"]
    assert views[0][0]["role"] == "system" and views[-1][-1]["role"] == "user"
    with pytest.raises(ValueError, match="user_policy"):
        sandgym.make(env_id, user_policy="llm")


@pytest.mark.skipif(not DATA.is_dir(), reason="original tau-bench data not available")
@pytest.mark.parametrize("env_id", TAU_IDS)
def test_original_tasks_in_user_mode(env_id):
    tasks = sandgym.load_tasks(DATA / TASKS[env_id] / "tasks.json")
    config = {"db": {"$path": str(DATA / DB_FILES[env_id])}, "mode": "user"}
    result = sandgym.collect(env_id, episodes=len(tasks), tasks=tasks, config=config, user_policy="expert")
    assert result.errors == 0
    assert result.success_rate == 1.0, f"{result.successes}/{result.episodes}"
