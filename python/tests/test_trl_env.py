"""The TRL environment class: the tool schemas TRL derives from its methods are the env's, and calls step the env.

TRL derives a tool's schema with transformers' ``get_json_schema`` (signature + Google-style docstring); the
class is checked with that same function, and with the member scan GRPOTrainer does.
"""

import inspect
import json

import pytest
import sandgym
from sandgym.integrations.trl import EPISODE_OVER, environment_factory

transformers_utils = pytest.importorskip("transformers.utils")


@pytest.mark.parametrize("env_id", ["countdown-v0", "tau-retail-v0", "code-math-v0"])
def test_methods_carry_the_env_tool_schemas(env_id):
    cls = environment_factory(env_id)
    instance = cls()
    # GRPOTrainer's scan: public functions of the class other than reset / get_reward are tools.
    names = [n for n, _ in inspect.getmembers(cls, predicate=inspect.isfunction) if not n.startswith("_")]
    tools = {t["function"]["name"]: t["function"] for t in sandgym.make(env_id).tools}
    assert sorted(names) == sorted([*tools, "get_reward", "reset"])
    for name, function in tools.items():
        schema = transformers_utils.get_json_schema(getattr(instance, name))["function"]
        assert schema["name"] == name
        want = function["parameters"]
        assert set(schema["parameters"]["properties"]) == set(want.get("properties", {}))
        assert set(schema["parameters"].get("required", [])) == set(want.get("required", []))
        for prop, spec in want.get("properties", {}).items():
            got = schema["parameters"]["properties"][prop]["type"]
            assert got == spec["type"] or spec["type"] in got, (name, prop, got, spec)


def test_a_played_row_scores_with_the_envs_verifier():
    env = sandgym.make("countdown-v0")
    env.reset(seed=7)
    task = env.task
    expert = env.expert_action()["tool_calls"][0]

    instance = environment_factory("countdown-v0")()
    prompt = [{"role": "user", "content": "..."}]
    row = {"prompt": prompt, "task": json.dumps(task), "seed": 7, "env_id": "countdown-v0"}
    assert instance.reset(**row) is None, "the exported prompt already holds the task"
    assert "2" in instance.calc(expression="1+1")
    assert instance.get_reward() == 0.0
    result = instance.submit(**json.loads(expert["arguments"]))
    assert instance.done and instance.get_reward() == 1.0, result
    assert instance.calc(expression="2+2") == EPISODE_OVER
    assert instance.calls == 2

    # Without a prompt column, reset returns the task for TRL to append to the user message.
    text = instance.reset(task=task, seed=7)
    assert "Target" in text and instance.get_reward() == 0.0 and not instance.done


def test_completion_reward_scores_single_turn_completions_with_the_verifier():
    from sandgym import _core
    from sandgym.integrations.trl import completion_reward

    env = sandgym.make("countdown-v0")
    env.reset(seed=5)
    call = env.expert_action()["tool_calls"][0]
    arguments = json.loads(call["arguments"])
    right = _core.render_tool_call("submit", arguments)
    wrong = _core.render_tool_call("submit", {"expression": "1 + 1"})
    structured = [{"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "submit", "arguments": arguments}}]}]  # fmt: skip
    reward = completion_reward("countdown-v0")
    task = json.dumps(env.task)
    scores = reward(
        completions=[right, [{"role": "assistant", "content": wrong}], structured, "no call at all"],
        task=[task] * 4,
        seed=[5] * 4,
    )
    assert scores == [1.0, 0.0, 1.0, 0.0]
    assert reward.__name__ == "sandgym_countdown_v0"
