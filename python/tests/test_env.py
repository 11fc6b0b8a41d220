import json
import sys

import gymnasium
import pytest
import sandgym
from gymnasium.utils.env_checker import check_env
from sandgym import errors

BUNDLED = [spec["id"] for spec in sandgym.list_envs()]


def test_bundled_ids():
    assert BUNDLED[:2] == ["countdown-v0", "parity-v0"]
    assert "tau-retail-v0" in BUNDLED


@pytest.mark.parametrize("env_id", BUNDLED)
def test_gymnasium_env_checker(env_id):
    env = sandgym.make(env_id)
    assert isinstance(env, gymnasium.Env)
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize("env_id", BUNDLED)
def test_expert_episode_and_determinism(env_id):
    def play(seed):
        env = sandgym.make(env_id)
        obs, info = env.reset(seed=seed)
        trace = [json.dumps(obs)]
        for _ in range(16):
            action = env.expert_action()
            obs, reward, terminated, truncated, info = env.step(action)
            trace.append(json.dumps([obs, reward, terminated, truncated]))
            if terminated or truncated:
                break
        return trace, info

    trace, info = play(3)
    assert info["success"] is True
    assert trace == play(3)[0]
    assert trace != play(4)[0]


def test_text_actions_are_parsed_and_format_errors_are_observations():
    env = sandgym.make("countdown-v0")
    obs, info = env.reset(seed=0)
    assert obs[0]["role"] == "system" and obs[1]["role"] == "user"
    obs, reward, terminated, truncated, info = env.step(
        '<tool_call>{"name": "calc", "arguments": {"expression": "6*7"}}</tool_call>'
    )
    assert obs[0]["role"] == "tool" and "42" in obs[0]["content"]
    obs, reward, terminated, truncated, _ = env.step("<tool_call>{broken</tool_call>")
    assert obs[0]["content"].startswith("Format error")
    assert reward == 0.0 and not terminated
    assert env.conversation[-2]["role"] == "assistant"


def test_config_knobs_and_task_option():
    env = sandgym.make("parity-v0", d=8)
    obs, info = env.reset(seed=1)
    assert len(env.task["bits"]) == 8
    obs, info = env.reset(seed=2, options={"task": {"bits": "1011"}})
    assert "1 0 1 1" in obs[-1]["content"]
    with pytest.raises(errors.RejectedError):
        sandgym.make("parity-v0", no_such_knob=1)
    with pytest.raises(errors.RejectedError):
        env.reset(seed=0, options={"task": {"bits": "10x1"}})


def test_reset_info_keeps_the_gold_answer_out_unless_asked():
    env = sandgym.make("countdown-v0")
    _, info = env.reset(seed=3)
    assert "task" not in info and "solution" not in json.dumps(info)
    assert env.task["solution"], "the task itself, with its solution, stays on the env"
    _, info = env.reset(seed=3, options={"expose_task": True})
    assert info["task"] == env.task


def test_fork_and_snapshot():
    env = sandgym.make("countdown-v0")
    env.reset(seed=5)
    calc = {"content": "", "tool_calls": [{"id": "c", "name": "calc", "arguments": '{"expression": "2+3"}'}]}
    env.step(calc)
    fork = env.fork()
    snap = env.snapshot()
    assert snap.memory_bytes > 0
    a = env.step(calc)
    b = fork.step(calc)
    assert a[:4] == b[:4]
    env.restore(snap)
    assert env.step(calc)[:4] == a[:4]


def test_step_after_end_raises_reset_needed():
    env = sandgym.make("parity-v0", d=4)
    env.reset(seed=0)
    env.step(env.expert_action())
    with pytest.raises(errors.ResetNeededError):
        env.step("anything")


def test_unknown_env():
    with pytest.raises(errors.UnknownEnvError):
        sandgym.make("nope-v0")


def test_package_is_installed_not_source():
    assert "site-packages" in sandgym.__file__ or "dist-packages" in sandgym.__file__, sandgym.__file__
    assert sys.modules["sandgym._core"].__file__.endswith((".so", ".pyd"))


def test_compiled_modules_are_cached_on_disk(tmp_path):
    import os
    import subprocess

    env = dict(os.environ, SANDGYM_CACHE_DIR=str(tmp_path))
    code = "import sandgym; sandgym.make('countdown-v0').reset(seed=0)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    cached = sorted((tmp_path / "modules").glob("*.cwasm"))
    assert len(cached) == 1
    first = cached[0].stat()
    # A second process loads the cached artifact instead of compiling it again: a rewrite would be a new
    # file renamed into place (another inode). Loading marks it recently used (a later mtime).
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert sorted((tmp_path / "modules").glob("*.cwasm")) == cached
    second = cached[0].stat()
    assert second.st_ino == first.st_ino
    assert second.st_mtime_ns >= first.st_mtime_ns


def test_module_cache_evicts_the_least_recently_used_beyond_its_budget(tmp_path):
    import os
    import subprocess

    modules = tmp_path / "modules"
    code = "import sandgym; sandgym.make('{}').reset(seed=0)"
    env = dict(os.environ, SANDGYM_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", code.format("countdown-v0")], env=env, check=True, timeout=120)
    countdown = set(modules.glob("*.cwasm"))
    assert countdown
    # With no room at all, writing parity's module evicts everything older; the newest file stays.
    env["SANDGYM_CACHE_MAX_MB"] = "0"
    subprocess.run([sys.executable, "-c", code.format("parity-v0")], env=env, check=True, timeout=120)
    left = set(modules.glob("*.cwasm"))
    assert len(left) == 1
    assert not left & countdown


def test_pool_exhaustion_is_a_clear_error():
    import os
    import subprocess

    code = """
import sandgym
from sandgym import errors
envs = [sandgym.make("parity-v0") for _ in range(4)]
try:
    sandgym.make("parity-v0")
except errors.PoolExhaustedError as e:
    print("exhausted:", e)
del envs
sandgym.make("parity-v0").reset(seed=0)  # slots come back when envs are dropped
print("recovered")
"""
    env = dict(os.environ, SANDGYM_POOL_SLOTS="4")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "exhausted: the sandbox pool is full (4 slots)" in out.stdout
    assert "recovered" in out.stdout
