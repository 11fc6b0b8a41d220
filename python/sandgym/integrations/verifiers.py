"""verifiers 0.4 (``verifiers.v1``) over sandgym envs: a Taskset of an env's tasks and an Env that plays them.

verifiers runs an eval (``vf-eval``) or a training rollout (prime-rl) as one ``Env.run(task, agents)`` per task:
the env opens an interaction with its agent and answers each model turn itself, the way verifiers' own OpenEnv
and TextArena bridges (``verifiers/v1/tasksets/openenv/``) step their engines host-side. This module owns that
bridge for sandgym:

- :class:`SandgymTaskset` (config :class:`SandgymTasksetConfig`) yields one :class:`SandgymTask` per episode: the
  env's opening messages as the prompt, with the env id, its config knobs, the seed and the task (JSON object,
  gold answer included) in the task data, so the episode replays exactly (``options={"task": ...}``).
  ``num_tasks`` generated tasks from ``seed`` on, or the tasks of a ``tasks_file`` (sandgym's ``--tasks``).
- :class:`SandgymVerifiersEnv` (config :class:`SandgymEnvConfig`, one seat ``player``) resets the sandboxed env
  to the task, sends the model's reply of each turn to ``env.step`` (its text, which the env's own parser reads
  as ``sandgym collect`` does, or its structured tool calls), answers with the env's messages as the next user
  turn (tool results as ``<tool_response>`` blocks, rendered by sandgym's core), and ends when the env ends the
  episode or after ``max_turns`` model turns. It records the episode's summed env reward as the trace's
  ``sandgym_reward``, ``sandgym_success`` as a metric, and the steps in ``trace.info["sandgym"]``.
- :class:`SandgymHarness` is the seat's default program: one chat completion per turn, in-process, through the
  rollout's interception endpoint (so verifiers records every model call), with the env's tool schemas as
  ``tools`` unless ``send_tools`` is off. ``--env.player.harness.id`` pins another verifiers harness that can
  resume an exchange (verifiers' ``null`` chat program runs as a uv script: it needs ``uv`` and network access to
  prepare it); the tests run this one.

verifiers finds plugins by id: ``vf-eval <id>`` imports the top-level module named by the id (``-`` read as
``_``) and takes the Taskset, Env and Harness its ``__all__`` exports. That module is ``sandgym_verifiers``
(shipped beside ``sandgym``), so the id is ``sandgym-verifiers``::

    vf-eval sandgym-verifiers -m <model> --client.base-url http://127.0.0.1:8000/v1 --client.api-key-var KEY
        --env.taskset.env countdown-v0 --env.taskset.num-tasks 8 -r 4 --no-push    (one command line)

Importing this module imports verifiers (``pip install verifiers==0.4.0``); ``import sandgym`` does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sandgym import _core
from sandgym.env import SandgymEnv
from sandgym.integrations._rows import row_task

try:
    import httpx  # type: ignore[import-not-found,unused-ignore]
    import verifiers.v1 as vf  # type: ignore[import-not-found,unused-ignore]
    from pydantic import Field  # type: ignore[import-not-found,unused-ignore]
    from verifiers.v1.dialects.chat import message_to_wire  # type: ignore[import-not-found,unused-ignore]
except ImportError as exc:  # pragma: no cover - exercised only without verifiers
    raise ImportError(
        f"sandgym.integrations.verifiers needs verifiers 0.4 (`pip install verifiers==0.4.0`) ({exc})",
        name=exc.name,
    ) from exc

__all__ = [
    "REWARD_NAME",
    "SUCCESS_METRIC",
    "SandgymData",
    "SandgymEnvConfig",
    "SandgymHarness",
    "SandgymHarnessConfig",
    "SandgymTask",
    "SandgymTaskset",
    "SandgymTasksetConfig",
    "SandgymVerifiersEnv",
    "replay_reward",
]

#: The trace reward :class:`SandgymVerifiersEnv` records: the episode's summed env reward.
REWARD_NAME = "sandgym_reward"
#: The trace metric :class:`SandgymVerifiersEnv` records: 1.0 when the env reported success.
SUCCESS_METRIC = "sandgym_success"


class SandgymData(vf.TaskData):  # type: ignore[misc,unused-ignore]
    """One sandgym episode as verifiers task data: the prompt fields plus what replays the episode."""

    env_id: str
    """The sandgym env (``countdown-v0``, or a ``.wasm`` path)."""
    env_config: dict[str, Any] = Field(default_factory=dict)
    """The env's config knobs, as ``sandgym.make`` takes them."""
    seed: int
    """The episode's seed."""
    task: Any
    """The env's task (a JSON object, gold answer included): ``reset(options={"task": task})`` replays it."""
    tools: list[dict[str, Any]] = Field(default_factory=list)
    """The env's tool schemas (OpenAI JSON)."""
    opening: list[dict[str, str]] = Field(default_factory=list)
    """The env's opening messages (role and content) as its reset returned them."""


class SandgymTask(vf.Task[SandgymData]):  # type: ignore[misc,unused-ignore]
    """A sandgym episode; :class:`SandgymVerifiersEnv` scores it with the env's own verifier while it plays."""


class SandgymTasksetConfig(vf.TasksetConfig):  # type: ignore[misc,unused-ignore]
    """Which sandgym env and tasks, under ``--env.taskset.*``."""

    env: str = "countdown-v0"
    """The sandgym env id (or ``.wasm`` path)."""
    env_config: dict[str, Any] = Field(default_factory=dict)
    """The env's config knobs (``--env.taskset.env-config '{"max_numbers": 5}'``)."""
    num_tasks: int = Field(16, ge=1)
    """Generated tasks (seeds ``seed`` .. ``seed + num_tasks - 1``), when no ``tasks_file`` is given."""
    seed: int = 0
    """The first episode's seed."""
    tasks_file: str | None = None
    """A task file (JSONL or JSON array, as ``sandgym collect --tasks`` reads): one task per entry."""
    split: str | None = None
    """Only the tasks of this split of ``tasks_file``."""
    fold_system: bool = False
    """Put the env's system prompt at the head of the first user message, for chat templates without a system
    role (llama.cpp's ``gemma`` format drops system messages), as ``sandgym collect --fold-system`` does."""


def _prompt_fields(opening: list[dict[str, str]], fold_system: bool) -> tuple[str | None, str | list[dict[str, str]]]:
    """The task's ``system_prompt`` and ``prompt`` from the env's opening messages."""
    split = next((i for i, m in enumerate(opening) if m["role"] != "system"), len(opening))
    system = "\n\n".join(m["content"] for m in opening[:split]) or None
    rest = [dict(m) for m in opening[split:]]
    if fold_system and system is not None:
        if rest and rest[0]["role"] == "user":
            rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
        else:
            rest.insert(0, {"role": "user", "content": system})
        system = None
    if not rest:
        raise ValueError("the env's opening messages hold no user message to prompt the model with")
    if any(m["role"] == "system" for m in rest):
        raise ValueError("the env's opening messages have a system message after a user message")
    prompt: str | list[dict[str, str]] = rest[0]["content"] if len(rest) == 1 and rest[0]["role"] == "user" else rest
    return system, prompt


def _opening(observation: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m.get("content") or "")} for m in observation]


class SandgymTaskset(vf.Taskset[SandgymTask, SandgymTasksetConfig]):  # type: ignore[misc,unused-ignore]
    """The episodes of one sandgym env as verifiers tasks (see the module docstring)."""

    def load(self) -> Iterator[SandgymTask]:
        """Reset the env for each episode and yield its task: prompt from the opening messages, replay data."""
        config = self.config
        env = SandgymEnv(config.env, dict(config.env_config) or None)
        if config.tasks_file is not None:
            tasks: list[Any] = _core.read_tasks(str(config.tasks_file), config.split)
            if not tasks:
                raise ValueError(f"tasks_file {config.tasks_file!r} holds no tasks (split {config.split!r})")
        else:
            if config.split is not None:
                raise ValueError("`split` selects tasks of a `tasks_file`; none is given")
            tasks = [None] * config.num_tasks
        for index, task in enumerate(tasks):
            seed = config.seed + index
            observation, info = env.reset(seed=seed, options={"task": row_task(task)} if task is not None else None)
            opening = _opening(observation)
            system, prompt = _prompt_fields(opening, config.fold_system)
            task_id = str(info.get("task_id") or f"{env.id}#{seed}")
            yield SandgymTask(
                SandgymData(
                    id=task_id,
                    name=f"{env.id}#{seed}",
                    prompt=prompt,
                    system_prompt=system,
                    env_id=config.env,
                    env_config=dict(config.env_config),
                    seed=seed,
                    task=env.task,
                    tools=env.tools,
                    opening=opening,
                ),
                config.task,
            )


class SandgymEnvConfig(vf.EnvConfig):  # type: ignore[misc,unused-ignore]
    """:class:`SandgymVerifiersEnv`'s config: the ``player`` seat (a local runtime: the harness needs no box)."""

    player: vf.AgentConfig = vf.AgentConfig(runtime=vf.SubprocessConfig())
    """The policy under evaluation or training (``--env.player.*``)."""
    max_turns: int = Field(16, ge=1)
    """Model turns per episode at most; the env ends the episode sooner when it is over."""


def _action(segment: Any) -> str | dict[str, Any]:
    """The model's reply of a segment as a sandgym action: its structured tool calls, else its text as written."""
    for message in reversed(segment.messages):
        if message.role != "assistant":
            continue
        content = message.content or ""
        if message.tool_calls:
            calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls]
            return {"content": content, "tool_calls": calls}
        return content
    raise ValueError("the model's turn holds no assistant message")


def _answer(observation: list[dict[str, Any]], native_calls: bool) -> str | list[dict[str, Any]]:
    """The env's messages as the next user turn: tool messages when the model called tools natively."""
    if native_calls:
        out: list[dict[str, Any]] = []
        for m in observation:
            if m["role"] == "tool":
                out.append({"role": "tool", "tool_call_id": m.get("tool_call_id") or "", "content": m["content"]})
                if m.get("name"):
                    out[-1]["name"] = m["name"]
            else:
                out.append({"role": "user", "content": m.get("content") or ""})
        return out
    return _core.render_user_turn(observation)


class SandgymVerifiersEnv(vf.Env[SandgymEnvConfig]):  # type: ignore[misc,unused-ignore]
    """Plays a :class:`SandgymTask` in the sandbox, the env answering every model turn (see the module docstring).

    Sandboxed env instances are pooled per env id and config: an episode takes an idle one (or makes one) and
    gives it back when it ends, so concurrent episodes never share an instance and a run does not pay for a new
    sandbox per episode (every episode resets to its own task and seed).
    """

    _idle: dict[str, list[SandgymEnv]]

    def _take_env(self, data: SandgymData) -> tuple[str, SandgymEnv]:
        key = json.dumps([data.env_id, data.env_config], sort_keys=True)
        idle = self.__dict__.setdefault("_idle", {}).setdefault(key, [])
        return key, idle.pop() if idle else SandgymEnv(data.env_id, dict(data.env_config) or None)

    async def run(self, task: Any, agents: Any) -> None:
        """One episode: reset the env to the task, step it with each model reply, record its reward."""
        data = task.data
        if not isinstance(data, SandgymData):
            raise TypeError(
                f"SandgymVerifiersEnv plays sandgym tasks (SandgymData), got {type(data).__name__}: pair it with the "
                "sandgym-verifiers taskset"
            )
        key, env = self._take_env(data)
        try:
            await self._play(task, data, env, agents)
        finally:
            self._idle[key].append(env)

    async def _play(self, task: Any, data: SandgymData, env: SandgymEnv, agents: Any) -> None:
        observation, _ = env.reset(seed=data.seed, options={"task": data.task})
        if _opening(observation) != data.opening:
            raise ValueError(
                f"task {data.id!r}: the env's opening messages on replay differ from the task's "
                "(another env build or config than the one that made the taskset?)"
            )
        total, success, terminated, truncated = 0.0, False, False, False
        steps: list[dict[str, Any]] = []
        async with agents.player.interaction(task) as interaction:
            segment = await interaction.turn()
            while not segment.terminated:
                action = _action(segment)
                observation, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                success = bool(info.get("success", False))
                steps.append({"reward": float(reward), "terminated": terminated, "truncated": truncated})
                if terminated or truncated:
                    break
                if len(steps) >= self.config.max_turns:
                    truncated = True
                    break
                segment = await interaction.turn(_answer(observation, isinstance(action, dict)))
        trace = interaction.trace
        trace.record_reward(REWARD_NAME, total)
        trace.record_metric(SUCCESS_METRIC, float(success))
        trace.info["sandgym"] = {
            "env_id": data.env_id,
            "task_id": data.id,
            "seed": data.seed,
            "steps": steps,
            "terminated": bool(terminated),
            "truncated": bool(truncated),
        }


class SandgymHarnessConfig(vf.HarnessConfig):  # type: ignore[misc,unused-ignore]
    """:class:`SandgymHarness`'s knobs, under ``--env.player.harness.*``."""

    send_tools: bool = True
    """Send the env's tool schemas as the request's ``tools`` (servers with a tool-calling chat template)."""
    request_timeout_s: float = Field(600.0, gt=0)
    """Timeout of one chat completion."""


class SandgymHarness(vf.Harness[SandgymHarnessConfig]):  # type: ignore[misc,unused-ignore]
    """One chat completion per turn, in-process, through the rollout's interception endpoint.

    verifiers' harness contract allows a loop that runs in-process as long as every model call goes through the
    interception ``endpoint``; the trace records each call (model, sampling, tokens) as it would a program's.
    It runs no tools itself: the env answers every turn.
    """

    APPENDS_SYSTEM_PROMPT = True
    SUPPORTS_RESUME = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    async def launch(
        self,
        ctx: Any,
        trace: Any,
        runtime: Any,
        endpoint: str,
        secret: str,
        mcp_urls: dict[str, str],
        data: Any,
    ) -> Any:
        """Ask the model for one reply to the conversation in ``data``; the interception records it."""
        system, prompt = self.resolve_prompt(data)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        if isinstance(prompt, str):
            messages.append({"role": "user", "content": prompt})
        else:
            messages.extend(message_to_wire(m) for m in prompt or [])
        body: dict[str, Any] = {"model": ctx.model, "messages": messages}
        tools = getattr(data, "tools", None)
        if self.config.send_tools and tools:
            body["tools"] = tools
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.config.request_timeout_s, connect=10.0)) as client:
            response = await client.post(
                f"{endpoint.rstrip('/')}/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
            )
        if response.status_code != 200:
            return vf.ProgramResult(
                exit_code=1,
                stdout="",
                stderr=f"chat completion through the interception failed: HTTP {response.status_code}: "
                f"{response.text[-2000:]}",
            )
        return vf.ProgramResult(exit_code=0, stdout=response.text, stderr="")


def replay_reward(data: dict[str, Any], actions: list[str | dict[str, Any]]) -> tuple[float, bool]:
    """The score sandgym's own verifier gives a recorded episode: ``actions`` replayed on a fresh env reset to the task.

    Args:
        data: the task data of a trace (``trace.task.data``, as a dict: ``env_id``, ``env_config``, ``seed``,
            ``task``).
        actions: the model's replies in order (texts, or ``{"content", "tool_calls"}`` dicts).

    Returns:
        The summed reward and whether the env reported success, stepping until the env ends the episode.

    """
    missing = [key for key in ("env_id", "seed", "task") if key not in data]
    if missing:
        raise KeyError(f"the task data lacks {missing} (not a sandgym-verifiers task: {json.dumps(data)[:200]})")
    env = SandgymEnv(data["env_id"], dict(data.get("env_config") or {}) or None)
    env.reset(seed=int(data["seed"]), options={"task": data["task"]})
    total, success = 0.0, False
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        success = bool(info.get("success", False))
        if terminated or truncated:
            break
    return total, success
