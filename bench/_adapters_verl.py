"""The verl rows of ``bench_adapters.py``: env-side CPU per rollout of ``SandgymAgentLoop`` vs verl's ToolAgentLoop.

Both sides run their real agent loop's ``run()`` (verl's own config objects, Continuous Token builder and, for the
native side, tool parser) against a scripted server manager whose ``generate`` hands back pre-tokenized model
replies, so everything but generation is timed: building the episode, rendering and tokenizing the prompt and every
env message into the context, merging the model's tokens, decoding and parsing its calls, and running the env.

- sandgym: :class:`sandgym.integrations.verl.SandgymAgentLoop` over ``countdown-v0`` rows as ``sandgym export --to
  verl-rl`` writes them (a ``SandgymEnv`` built from ``extra_info`` and reset to the row's task, stepped with the
  decoded text, which the guest parses).
- native: verl's ``ToolAgentLoop`` (``tool_agent``, hermes tool parser) with ``calc`` and ``submit`` as
  ``verl.tools.base_tool.BaseTool`` subclasses over ``bench_python.PyCountdown``: verl calls ``create`` /
  ``execute`` / ``release`` around every call, so each call builds the row's env from its seed
  (``tools_kwargs.<tool>.create_kwargs``), steps it and drops it; ``submit``'s reward is the tool reward.

ToolAgentLoop cannot end an episode from a tool, so after ``submit`` the native rollout takes one more model turn (a
bare end-of-turn token) and tokenizes ``submit``'s result into the context; ``SandgymAgentLoop`` stops when the env
ends the episode. That asymmetry is part of what a verl user gets natively and is left in.

Needs verl, torch, transformers, tokenizers and TRL (for the tests' Qwen-like tokenizer under TRL's Qwen3 template,
built in-process, no downloads). Run through ``bench_adapters.py`` in the verl virtualenv.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import sandgym
from bench_python import PyCountdown
from omegaconf import OmegaConf
from sandgym import _core
from sandgym.integrations.verl import SandgymAgentLoop
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
from verl.experimental.agent_loop.tool_agent_loop import ToolAgentLoop
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse
from verl.workers.rollout.replica import TokenOutput

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))
from tiny_qwen import qwen_like_tokenizer  # noqa: E402

END = "<|im_end|>"


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence stdout at the descriptor (the tokenizer's trainer and ``BaseTool.__init__`` print)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class CountdownTool(BaseTool):
    """One countdown tool (``calc`` or ``submit``) as a verl user writes it: an env per instance, per call."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema) -> None:
        """The tool's schema; its live instances by id."""
        super().__init__(config, tool_schema)
        self._envs: dict[str, PyCountdown] = {}

    async def create(
        self, instance_id: str | None = None, create_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[str, ToolResponse]:
        """Build the row's episode (its seed from ``create_kwargs``) for one call."""
        instance_id = instance_id or str(uuid4())
        env = PyCountdown()
        env.reset(int((create_kwargs or {}).get("seed", 0)))
        self._envs[instance_id] = env
        return instance_id, ToolResponse()

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict]:
        """Run the call on the instance's env; its reward is the tool reward."""
        call = {"id": "c", "name": self.name, "arguments": json.dumps(parameters)}
        messages, reward, _, _ = self._envs[instance_id].step({"content": "", "tool_calls": [call]})
        return ToolResponse(text=messages[0]["content"]), reward, {}

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        """Drop the instance's env."""
        del self._envs[instance_id]


class ScriptedServer:
    """verl's server manager with the model replaced by pre-tokenized replies, one list per rollout."""

    def __init__(self) -> None:
        """No script yet: :meth:`play` sets one per rollout."""
        self.replies: list[TokenOutput] = []
        self.turn = 0

    def play(self, replies: list[TokenOutput]) -> None:
        """The replies of the next rollout, in order."""
        self.replies, self.turn = replies, 0

    async def generate(
        self, request_id: str, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any
    ) -> TokenOutput:
        """The next scripted reply."""
        self.turn += 1
        return self.replies[self.turn - 1]


def _config(max_turns: int) -> Any:
    return OmegaConf.create(
        {
            "actor_rollout_ref": {
                "rollout": {
                    "prompt_length": 4096,
                    "response_length": 4096,
                    "full_determinism": False,
                    "multi_turn": {
                        "max_assistant_turns": max_turns,
                        "max_user_turns": max_turns,
                        "max_parallel_calls": 1,
                        "max_tool_response_length": 2048,
                        "tool_response_truncate_side": "middle",
                        "format": "hermes",
                    },
                }
            }
        }
    )


def _reply(tokenizer: Any, text: str) -> TokenOutput:
    ids = tokenizer.encode(text + END, add_special_tokens=False)
    return TokenOutput(token_ids=ids, log_probs=[-0.25] * len(ids))


class BuilderClock:
    """CPU seconds spent inside a Continuous Token builder's calls (rendering and tokenizing the context).

    The builder runs in verl's executor threads while the loop awaits it, so the process's CPU clock read around
    each call is that call's CPU.
    """

    NAMES = ("build_initial_tokens", "merge_context_tokens", "merge_assistant_tokens", "align_response_metadata")

    def __init__(self, builder: Any) -> None:
        """Wrap ``builder``'s calls in place."""
        self.seconds = 0.0
        for name in self.NAMES:
            setattr(builder, name, self._timed(getattr(builder, name)))

    def _timed(self, call: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start

        return timed


def bench_verl(rows: list[dict], calcs: list[str], repeats: int) -> dict[str, float]:
    """CPU seconds per rollout (median of ``repeats``) of both agent loops over ``rows``, and of it the builder's.

    Returns ``native``, ``sandgym`` and ``native_builder``, ``sandgym_builder`` (the Continuous Token builder's
    share in the median repeat); prints nothing.
    """
    with _quiet():
        tokenizer = qwen_like_tokenizer()
    tools = sandgym.make("countdown-v0").tools
    calls = [_reply(tokenizer, _core.render_tool_call("calc", {"expression": e})) for e in calcs]
    scripts = [[*calls, _reply(tokenizer, _core.render_tool_call("submit", {"expression": r["answer"]}))] for r in rows]
    bare_end = _reply(tokenizer, "")
    sandgym_rows = [
        {
            "raw_prompt": [],
            "extra_info": {"env_id": "countdown-v0", "seed": r["seed"]},
            "reward_model": {"style": "rule", "ground_truth": r["task"]},
        }
        for r in rows
    ]
    native_rows = [
        {
            "raw_prompt": r["opening"],
            "extra_info": {},
            "tools_kwargs": {name: {"create_kwargs": {"seed": r["seed"]}} for name in ("calc", "submit")},
        }
        for r in rows
    ]

    async def timed(kind: str) -> tuple[float, float]:
        server = ScriptedServer()
        common = {
            "trainer_config": DictConfigWrap(_config(16)),
            "server_manager": server,
            "tokenizer": tokenizer,
            "processor": None,
            "dataset_cls": None,
            "data_config": DictConfigWrap(OmegaConf.create({})),
            "hf_model_type": "qwen3",
        }
        if kind == "sandgym":
            loop: Any = SandgymAgentLoop(**common)
            inputs, script = sandgym_rows, scripts
        else:
            with _quiet():
                wrapped = ToolListWrap([CountdownTool({}, OpenAIFunctionToolSchema.model_validate(t)) for t in tools])
            loop = ToolAgentLoop(**common, tools=wrapped)
            inputs, script = native_rows, [[*s, bare_end] for s in scripts]
        clock = BuilderClock(loop.continuous_token_builder)
        # One untimed rollout warms the builder and the thread pool; then check both sides play the whole script.
        server.play(script[0])
        out = await loop.run({"temperature": 0.0}, **inputs[0])
        assert server.turn == len(script[0]), (kind, server.turn)
        if kind == "sandgym":
            assert out.reward_score == 1.0, out.reward_score
        else:
            assert len(out.extra_fields["tool_rewards"]) == len(calcs) + 1, out.extra_fields
        times = []
        for _ in range(repeats):
            clock.seconds = 0.0
            start = time.process_time()
            for row, replies in zip(inputs, script, strict=True):
                server.play(replies)
                await loop.run({"temperature": 0.0}, **row)
            times.append(((time.process_time() - start) / len(inputs), clock.seconds / len(inputs)))
        return sorted(times)[len(times) // 2]

    native, native_builder = asyncio.run(timed("native"))
    ours, ours_builder = asyncio.run(timed("sandgym"))
    return {"native": native, "sandgym": ours, "native_builder": native_builder, "sandgym_builder": ours_builder}
