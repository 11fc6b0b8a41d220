"""Policies from Python: callables (batched, GIL only for the call, errors as rows), replay, openai
settings, and the per-turn columns they fill."""

import json
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym
from sandgym.policies import CallablePolicy, OpenAIPolicy, ReplayPolicy


def submit(expression: str) -> str:
    return f'<tool_call>{{"name": "submit", "arguments": {{"expression": "{expression}"}}}}</tool_call>'


def rows_of(result):
    return sorted(pa.table(result.table).to_pylist(), key=lambda r: r["episode_index"])


def test_callable_gets_batches_of_observations_and_its_actions_are_parsed():
    batches = []

    def model(observations):
        batches.append(len(observations))
        for conversation in observations:
            assert conversation[0]["role"] == "system" and conversation[1]["role"] == "user"
        return [submit("1+2") for _ in observations]

    result = sandgym.collect("countdown-v0", 12, policy=CallablePolicy(model, batch_size=6), max_turns=2)
    rows = rows_of(result)
    assert len(rows) == 12 and result.errors == 0
    assert sum(batches) == 12
    assert max(batches) > 1, f"episodes in flight share calls: {batches}"
    for row in rows:
        assert row["policy"] == "python:model"
        assert row["messages"][2]["tool_calls"][0]["name"] == "submit"
        [turn] = row["policy_turns"]
        assert turn["parser"] == "hermes" and turn["format_error"] is None
        assert turn["raw_output"] == submit("1+2")
        assert row["prompt_tokens"] == row["completion_tokens"] == 0


def test_plain_function_dict_actions_usage_and_format_errors():
    def model(observations):
        out = []
        for conversation in observations:
            if len(conversation) == 2:  # first turn: a broken call
                out.append('<tool_call>{"name": "calc", "arguments": {</tool_call>')
            else:
                out.append(
                    {
                        "content": "done",
                        "tool_calls": [{"function": {"name": "submit", "arguments": {"expression": "2*3"}}}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 4},
                    }
                )
        return out

    rows = rows_of(sandgym.collect("countdown-v0", 3, policy=model, max_turns=3))
    for row in rows:
        first, second = row["policy_turns"]
        assert first["format_error"] and first["parser"] == "hermes"
        assert row["messages"][3]["role"] == "user" and row["messages"][3]["content"].startswith("Format error")
        assert second["parser"] == "openai" and second["format_error"] is None
        assert (row["prompt_tokens"], row["completion_tokens"]) == (11, 4)
        assert row["terminated"] and row["num_turns"] == 2


def test_exceptions_and_bad_returns_end_only_those_episodes():
    calls = {"n": 0}

    def flaky(observations):
        calls["n"] += 1
        if any("987" in json.dumps(c) for c in observations):
            raise ValueError("model crashed")
        return [submit("1") for _ in observations]

    tasks = [{"numbers": [1, 2], "target": 3}, {"numbers": [1, 2], "target": 987}]
    # Batch size 1: the failing task's exception cannot take the other episode with it.
    result = sandgym.collect("countdown-v0", 2, policy=CallablePolicy(flaky, batch_size=1), tasks=tasks)
    rows = rows_of(result)
    assert result.errors == 1
    assert rows[0]["error_kind"] is None
    assert rows[1]["error_kind"] == "policy" and "ValueError: model crashed" in rows[1]["error_message"]

    for bad, message in [
        (lambda obs: ["x"] * (len(obs) + 1), "actions for"),
        (lambda obs: [42 for _ in obs], "returned a int"),
        (lambda obs: None, "must return a list"),
        (lambda obs: [{"tool_calls": "nope"} for _ in obs], "not an assistant message"),
    ]:
        result = sandgym.collect("countdown-v0", 2, policy=bad, max_turns=1)
        assert result.errors == 2
        for row in rows_of(result):
            assert row["error_kind"] == "policy" and message in row["error_message"], row["error_message"]


def test_gil_is_released_outside_the_call():
    # A Python thread keeps running while the collector works: the GIL is held only inside the callable.
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        sandgym.collect("countdown-v0", 20, policy=lambda obs: [submit("9") for _ in obs], max_turns=2)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 5


def test_replay_reproduces_a_run(tmp_path):
    first = sandgym.collect("countdown-v0", 6, policy="random", max_turns=3, out_dir=tmp_path / "a")
    again = sandgym.collect("countdown-v0", 6, policy=ReplayPolicy(tmp_path / "a"), max_turns=3)
    before = sorted(pq.read_table(tmp_path / "a").to_pylist(), key=lambda r: r["episode_index"])
    after = rows_of(again)
    assert first.episodes == again.episodes == 6
    for a, b in zip(before, after, strict=True):
        assert a["messages"] == b["messages"]
        assert b["policy"] == "replay"


def test_policy_arguments_are_checked():
    with pytest.raises(TypeError):
        CallablePolicy("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown parser"):
        CallablePolicy(lambda obs: obs, parser="yaml")
    with pytest.raises(TypeError, match="a policy is a name"):
        sandgym.collect("countdown-v0", 1, policy=3)  # type: ignore[arg-type]
    with pytest.raises(sandgym.SandgymError, match="unknown policy"):
        sandgym.collect("countdown-v0", 1, policy="gpt")
    with pytest.raises(sandgym.SandgymError, match="http"):
        sandgym.collect("countdown-v0", 1, policy=OpenAIPolicy(base_url="localhost:1", model="m"))
    with pytest.raises(sandgym.SandgymError, match="replay"):
        sandgym.collect("countdown-v0", 1, policy=ReplayPolicy("/nonexistent/trajectories"))


def test_unreachable_openai_server_gives_error_rows_not_a_failed_run():
    policy = OpenAIPolicy(base_url="http://127.0.0.1:9/v1", model="m", retries=1, backoff_s=0.01, timeout_s=2)
    result = sandgym.collect("countdown-v0", 3, policy=policy, max_turns=2)
    assert result.episodes == 3 and result.errors == 3
    for row in rows_of(result):
        assert row["error_kind"] == "policy" and "after 2 attempts" in row["error_message"]


def test_parse_action_takes_a_parser_and_the_env_tools():
    tools = sandgym.make("countdown-v0").unwrapped.tools
    answer = "I think <answer>(25 - 5) * 4</answer>"
    # Without tools an answer tag stays text; with the env's tools it is a call of its submit tool.
    assert not sandgym.parse_action(answer).get("tool_calls")
    call = sandgym.parse_action(answer, parser="answer", tools=tools)["tool_calls"][0]
    assert call["name"] == "submit"
    react = 'Thought: add\nAction: calc\nAction Input: {"expression": "1+2"}'
    assert sandgym.parse_action(react, parser="react")["tool_calls"][0]["name"] == "calc"
    # A fixed parser that does not match is a format error, not silent text.
    assert sandgym.parse_action("just words", parser="hermes")["format_error"]
    with pytest.raises(sandgym.errors.InvalidArgumentError, match="unknown parser"):
        sandgym.parse_action("x", parser="yaml")
    with pytest.raises(sandgym.errors.InvalidArgumentError, match="list of tool schemas"):
        sandgym.parse_action("x", tools={"name": "calc"})  # type: ignore[arg-type]
