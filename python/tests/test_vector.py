import threading

import gymnasium
import numpy as np
import pytest
import sandgym
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

CALC = '<tool_call>{"name": "calc", "arguments": {"expression": "1+1"}}</tool_call>'
MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]


def test_is_a_gymnasium_vector_env_with_the_single_envs_spaces():
    vec = sandgym.VecEnv("countdown-v0", 3)
    single = sandgym.make("countdown-v0")
    assert isinstance(vec, gymnasium.vector.VectorEnv)
    assert vec.num_envs == 3
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert vec.single_observation_space == single.observation_space
    assert vec.single_action_space == single.action_space
    assert vec.observation_space == gymnasium.vector.utils.batch_space(single.observation_space, 3)
    assert vec.action_space == gymnasium.vector.utils.batch_space(single.action_space, 3)
    obs, infos = vec.reset(seed=0)
    assert vec.observation_space.contains(obs)
    assert list(infos["_task_id"]) == [True] * 3
    vec.action_space.seed(0)
    actions = vec.action_space.sample()
    assert vec.action_space.contains(actions)
    obs, rewards, terminations, truncations, infos = vec.step(actions)
    assert vec.observation_space.contains(obs)
    assert rewards.dtype == np.float64 and rewards.shape == (3,)
    assert terminations.dtype == np.bool_ and truncations.dtype == np.bool_
    assert list(infos["_success"]) == [True] * 3
    vec.close()
    assert vec.closed


def _expert_or_text(env):
    """The expert's action in a running episode, else any text (its action is ignored there)."""
    try:
        return env.unwrapped.expert_action() or CALC
    except sandgym.SandgymError:
        return CALC


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_matches_sync_vector_env_of_sandgym_make_envs(mode):
    """Slot i is ``sandgym.make``'s env with seed + i, autoreset and infos as Gymnasium's own SyncVectorEnv."""
    n, config = 4, {"max_turns": 3}
    vec = sandgym.VecEnv("countdown-v0", n, config, autoreset_mode=mode)
    sync = SyncVectorEnv([lambda: sandgym.make("countdown-v0", **config)] * n, autoreset_mode=mode)
    assert data_equivalence(vec.reset(seed=11), sync.reset(seed=11))
    ends = 0
    for step in range(12):
        # Some slots follow the expert (terminating), others send text that makes no progress (truncated).
        actions = tuple(_expert_or_text(env) if (i + step) % 3 else "no call" for i, env in enumerate(sync.envs))
        got, want = vec.step(actions), sync.step(actions)
        assert data_equivalence(got, want), f"step {step}"
        done = got[2] | got[3]
        ends += int(done.sum())
        if mode == AutoresetMode.DISABLED and done.any():
            mask = np.array(done)
            assert data_equivalence(vec.reset(options={"reset_mask": mask}), sync.reset(options={"reset_mask": mask}))
    assert ends >= n, "episodes ended, so autoreset was exercised"


def test_same_seed_same_batch_and_autoreset_seeds():
    def run(seed):
        vec = sandgym.VecEnv("countdown-v0", 3, {"max_turns": 1})
        out = [vec.reset(seed=seed)]
        for _ in range(3):
            out.append(vec.step(["no call"] * 3))
        return out

    first, second = run(5), run(5)
    assert data_equivalence(first, second)
    assert not data_equivalence(first, run(6))
    # max_turns 1: every step ends, so steps 2 and 3 include autoresets with seeds drawn from the reset seed
    assert first[2][4]["_seed"].all()


def test_failed_slot_is_an_info_and_a_truncation_then_autoresets(guest_dir):
    vec = sandgym.VecEnv(str(guest_dir / "hostile.wasm"), 3, fuel=50_000_000)
    vec.reset(seed=[0, 1, 2], options={"tasks": [{"mode": "ok"}, {"mode": "loop"}, {"mode": "ok"}]})
    obs, rewards, terminations, truncations, infos = vec.step(["go"] * 3)
    assert infos["error_kind"][1] == "out_of_fuel" and "fuel" in infos["error_message"][1]
    assert list(infos["_error_kind"]) == [False, True, False]
    assert list(truncations) == [False, True, False]
    assert terminations[0] and terminations[2]
    assert obs[1] == [] and rewards[1] == 0.0
    assert vec.observation_space.contains(obs)
    # Next step: every slot ended, so each is reset (a generated task is mode "ok") and none fails.
    obs, rewards, terminations, truncations, infos = vec.step(["go"] * 3)
    assert "error_kind" not in infos
    assert list(infos["_task_id"]) == [True] * 3
    assert not (terminations | truncations).any()


def test_failed_reset_is_an_info_and_the_next_step_resets_it(guest_dir):
    vec = sandgym.VecEnv(str(guest_dir / "hostile.wasm"), 2)
    obs, infos = vec.reset(seed=0, options={"tasks": [{"mode": "ok"}, {"mode": "no_such_mode"}]})
    assert list(infos["_error_kind"]) == [False, True]
    assert obs[1] == []
    obs, _, _, _, infos = vec.step(["go", "go"])
    assert list(infos["_task_id"]) == [False, True], "slot 1 was reset, slot 0 stepped"
    assert list(infos["_success"]) == [True, False]


def test_same_step_mode_reports_final_obs_and_info():
    vec = sandgym.VecEnv("countdown-v0", 2, {"max_turns": 1}, autoreset_mode="SameStep")
    vec.reset(seed=0)
    obs, _, _, truncations, infos = vec.step(["no call", "no call"])
    assert truncations.all()
    assert infos["_final_obs"].all() and infos["final_obs"][0][0]["role"] == "user"
    assert "success" in infos["final_info"]
    assert infos["_task_id"].all(), "the reset's info comes with the final one"
    assert obs[0][0]["role"] == "system"


def test_reset_mask_resets_only_the_selected_envs():
    vec = sandgym.VecEnv("countdown-v0", 3)
    first, _ = vec.reset(seed=0)
    obs, infos = vec.reset(seed=10, options={"reset_mask": np.array([False, True, False])})
    assert obs[0] == first[0] and obs[2] == first[2]
    assert list(infos["_seed"]) == [False, True, False] and infos["seed"][1] == 11
    with pytest.raises(ValueError):
        vec.reset(options={"reset_mask": np.array([1, 0, 1])})


def test_gymnasium_vector_wrappers_work_on_it():
    env = RecordEpisodeStatistics(sandgym.VecEnv("countdown-v0", 2, {"max_turns": 1}))
    env.reset(seed=0)
    _, _, _, _, infos = env.step(["no call", CALC])
    assert list(infos["_episode"]) == [True, True]
    assert list(infos["episode"]["l"]) == [1, 1]


def test_render_shows_each_conversation():
    vec = sandgym.VecEnv("countdown-v0", 2, render_mode="ansi")
    single = sandgym.make("countdown-v0", render_mode="ansi")
    vec.reset(seed=3)
    single.reset(seed=4)
    vec.step(["x", CALC])
    single.step(CALC)
    frames = vec.render()
    assert len(frames) == 2 and frames[1] == single.render()
    assert sandgym.VecEnv("countdown-v0", 1).render() is None


def test_step_slots_matches_single_envs():
    vec = sandgym.VecEnv("countdown-v0", 8)
    assert len(vec) == 8
    resets = vec.reset_slots(seeds=100)
    assert len({r["task_id"] for r in resets}) > 1
    envs = [sandgym.make("countdown-v0") for _ in range(8)]
    experts = []
    for i, env in enumerate(envs):
        env.reset(seed=100 + i)
        experts.append(env.expert_action())
    results = vec.step_slots(experts)
    singles = [env.step(a) for env, a in zip(envs, experts, strict=False)]
    for batch, single in zip(results, singles, strict=False):
        assert batch["messages"] == single[0]
        assert batch["reward"] == single[1]


def test_text_batch_parses_each_completion():
    vec = sandgym.VecEnv("countdown-v0", 2)
    vec.reset(seed=[1, 2])
    obs, *_ = vec.step([CALC, "no call here"])
    assert obs[0][0]["role"] == "tool"
    assert obs[1][0]["role"] == "user"
    vec.reset_slots(seeds=[1, 2])
    out = vec.step_slots([CALC, "no call here"])
    assert out[0]["messages"][0]["role"] == "tool"
    assert out[1]["messages"][0]["role"] == "user"


def test_gil_is_released_while_stepping():
    vec = sandgym.VecEnv("countdown-v0", 64)
    vec.reset(seed=0)
    counter = 0
    stop = False

    def spin():
        nonlocal counter
        while not stop:
            counter += 1

    thread = threading.Thread(target=spin)
    thread.start()
    steps = vec.run_steps(
        {"content": "", "tool_calls": [{"id": "c", "name": "calc", "arguments": '{"expression": "1+2"}'}]}, 200
    )
    stop = True
    thread.join()
    assert steps == 64 * 200
    assert counter > 1000, "a Python thread ran while Rust stepped"
