"""The verifiers rows of ``bench_adapters.py``: env-side CPU per rollout of ``SandgymVerifiersEnv`` vs a native env.

verifiers 0.4 plays a task as one ``Env.run(task, agents)``: the env opens an interaction with its ``player`` and
answers each model turn itself. Both sides run their real ``run()`` coroutine on real verifiers tasks, with the
agent side scripted: ``agents.player.interaction(task)`` yields a stand-in whose ``turn(message)`` normalizes the
env's answer into verifiers messages exactly as ``verifiers.v1.agent.Interaction.turn`` does (a string to a
``UserMessage``, wire dicts through ``parse_message``) and returns the next pre-built ``Segment`` (an
``AssistantMessage`` with one structured tool call, as a tool-calling server returns it); its trace only keeps
the recorded reward, metric and info. So what is timed per rollout is the env's own work: build and reset the
episode, turn each reply into an env step, the step, and the next user turn; not the harness, the interception
server, HTTP, the model or verifiers' scoring, which are the same on both sides.

- sandgym: :class:`sandgym.integrations.verifiers.SandgymVerifiersEnv` over tasks from ``SandgymTaskset.load()``
  (``countdown-v0``): a ``SandgymEnv`` built and reset to the task, its opening checked against the task's, each
  reply's tool calls sent to ``env.step``, the env's tool messages answered as tool messages.
- native: ``NativeCountdownEnv``, a ``vf.Env`` over ``bench_python.PyCountdown`` written the way verifiers' own
  host-side bridges are (``verifiers/v1/tasksets/textarena``: make and reset the engine from the task's seed, step
  it with each reply, answer with its observation, record its reward on the trace).

``Env.__init__`` (which loads the taskset and harness once per process) is bypassed: ``run`` reads only
``self.config``. Run through ``bench_adapters.py`` in the verifiers virtualenv.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import verifiers.v1 as vf
from bench_python import PyCountdown
from verifiers.v1.agent import Segment
from verifiers.v1.dialects import parse_message
from verifiers.v1.types import AssistantMessage, ToolCall, UserMessage

if importlib.util.find_spec("sandgym_verifiers") is None:  # a source checkout: the plugin module sits beside sandgym
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from sandgym.integrations.verifiers import (  # noqa: E402
    SandgymEnvConfig,
    SandgymTaskset,
    SandgymTasksetConfig,
    SandgymVerifiersEnv,
)


class CountdownData(vf.TaskData):  # type: ignore[misc]
    """A native countdown task: the prompt fields and the seed the engine is reset with."""

    seed: int
    """The episode's seed."""


class NativeCountdownEnv(vf.Env[SandgymEnvConfig]):  # type: ignore[misc]
    """Countdown as a verifiers user bridges a Python engine: stepped host-side with each model reply."""

    async def run(self, task: Any, agents: Any) -> None:
        """One episode: reset the engine to the task's seed, step it with each reply's tool calls, record the reward."""
        game = PyCountdown()
        game.reset(task.data.seed)
        total = 0.0
        async with agents.player.interaction(task) as interaction:
            segment = await interaction.turn()
            while not segment.terminated:
                reply = segment.messages[-1]
                calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls or []]
                messages, reward, terminated, truncated = game.step(
                    {"content": reply.content or "", "tool_calls": calls}
                )
                total += reward
                if terminated or truncated:
                    break
                answer = [
                    {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]} for m in messages
                ]
                segment = await interaction.turn(answer)
        interaction.trace.record_reward("countdown_reward", total)


class ScriptedTrace:
    """What ``run`` writes on the trace, kept and nothing more."""

    def __init__(self) -> None:
        """An empty record."""
        self.rewards: dict[str, float] = {}
        self.metrics: dict[str, float] = {}
        self.info: dict[str, Any] = {}

    def record_reward(self, name: str, value: float, weight: float = 1.0) -> None:
        """Keep a reward."""
        self.rewards[name] = value

    def record_metric(self, name: str, value: float) -> None:
        """Keep a metric."""
        self.metrics[name] = value


class ScriptedInteraction:
    """``Interaction`` with the harness and model replaced by pre-built segments (see the module docstring)."""

    def __init__(self, segments: list[Segment]) -> None:
        """The rollout's model segments, in order."""
        self.segments = segments
        self.turns = 0
        self.trace = ScriptedTrace()

    async def turn(self, message: str | list[Any] | None = None) -> Segment:
        """Normalize the env's answer as verifiers does, then hand back the next segment."""
        if isinstance(message, str):
            _ = [UserMessage(content=message)]
        elif message is not None:
            _ = [parse_message(m) if isinstance(m, dict) else m for m in message]
        self.turns += 1
        if self.turns > len(self.segments):
            return Segment(messages=[], terminated=True)
        return self.segments[self.turns - 1]


class ScriptedPlayer:
    """``agents.player``: opens a :class:`ScriptedInteraction` over the next rollout's segments."""

    def __init__(self) -> None:
        """No rollout yet: :meth:`play` sets one."""
        self.segments: list[Segment] = []
        self.last: ScriptedInteraction | None = None

    def play(self, segments: list[Segment]) -> None:
        """The segments of the next rollout."""
        self.segments = segments

    @asynccontextmanager
    async def interaction(self, task: Any) -> AsyncIterator[ScriptedInteraction]:
        """One rollout's interaction."""
        self.last = ScriptedInteraction(self.segments)
        yield self.last


class ScriptedAgents:
    """``agents`` with the one seat both envs declare."""

    def __init__(self) -> None:
        """The ``player`` seat."""
        self.player = ScriptedPlayer()


def _segment(index: int, name: str, expression: str) -> Segment:
    call = ToolCall(id=f"call_{index}", name=name, arguments=json.dumps({"expression": expression}))
    return Segment(messages=[AssistantMessage(content="", tool_calls=[call])])


def _env(cls: type) -> Any:
    env = cls.__new__(cls)
    env.config = SandgymEnvConfig.model_construct(max_turns=16)
    return env


def bench_verifiers(rows: list[dict], calcs: list[str], repeats: int) -> dict[str, float]:
    """CPU seconds per rollout (median of ``repeats``) of both envs' ``run`` over ``rows``; prints nothing."""
    taskset = SandgymTaskset(SandgymTasksetConfig(env="countdown-v0", num_tasks=len(rows), seed=rows[0]["seed"]))
    sandgym_tasks = list(taskset.load())
    assert [t.data.seed for t in sandgym_tasks] == [r["seed"] for r in rows]
    native_tasks = [
        vf.Task(
            CountdownData(name=t.data.name, prompt=t.data.prompt, system_prompt=t.data.system_prompt, seed=r["seed"])
        )
        for t, r in zip(sandgym_tasks, rows, strict=True)
    ]
    calls = [_segment(i, "calc", e) for i, e in enumerate(calcs)]
    scripts = [[*calls, _segment(len(calcs), "submit", r["answer"])] for r in rows]

    async def timed(env: Any, tasks: list[Any]) -> float:
        agents = ScriptedAgents()
        agents.player.play(scripts[0])
        await env.run(tasks[0], agents)  # untimed; checks the whole script is played
        assert agents.player.last is not None and agents.player.last.turns == len(scripts[0])
        if isinstance(env, SandgymVerifiersEnv):
            assert agents.player.last.trace.rewards["sandgym_reward"] == 1.0, agents.player.last.trace.rewards
        times = []
        for _ in range(repeats):
            start = time.process_time()
            for task, script in zip(tasks, scripts, strict=True):
                agents.player.play(script)
                await env.run(task, agents)
            times.append((time.process_time() - start) / len(tasks))
        return statistics.median(times)

    native = asyncio.run(timed(_env(NativeCountdownEnv), native_tasks))
    ours = asyncio.run(timed(_env(SandgymVerifiersEnv), sandgym_tasks))
    return {"native": native, "sandgym": ours}
