"""Gymnasium's own make / make_vec build sandgym's envs once sandgym is imported (or named in the id)."""

import subprocess
import sys

import gymnasium
import pytest
import sandgym
from gymnasium.utils.env_checker import check_env

BUNDLED = [spec["id"] for spec in sandgym.list_envs()]


@pytest.mark.parametrize("env_id", BUNDLED)
def test_every_bundled_env_is_registered_and_passes_the_checker(env_id):
    env = gymnasium.make(f"sandgym/{env_id}")
    assert env.spec is not None and env.spec.id == f"sandgym/{env_id}"
    assert env.unwrapped.id == env_id
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert obs[0]["role"] == "system"
    action = env.unwrapped.expert_action()
    assert action is not None
    env.step(action)


def test_make_passes_config_knobs_and_limits():
    env = gymnasium.make("sandgym/parity-v0", d=8, memory_mb=64, render_mode="ansi")
    assert env.unwrapped.config == {"d": 8}
    _, info = env.reset(seed=0)
    assert len(env.unwrapped.task["bits"]) == 8
    assert isinstance(env.render(), str) and env.render()


def test_the_module_prefix_imports_sandgym_itself():
    code = (
        "import sys, gymnasium\n"
        "assert 'sandgym' not in sys.modules\n"
        "env = gymnasium.make('sandgym:sandgym/countdown-v0')\n"
        "print(env.unwrapped.id)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "countdown-v0"


def test_make_vec_builds_a_rust_vec_env():
    vec = gymnasium.make_vec("sandgym/countdown-v0", num_envs=3)
    assert isinstance(vec, sandgym.VecEnv) and vec.num_envs == 3
    obs, infos = vec.reset(seed=0)
    assert len(obs) == 3
    vec.close()


def test_repr_names_the_env_and_its_config():
    env = sandgym.make("parity-v0", d=8)
    assert repr(env) == "SandgymEnv('parity-v0', config={'d': 8})"
    assert str(sandgym.make("countdown-v0")) == "SandgymEnv('countdown-v0')"
