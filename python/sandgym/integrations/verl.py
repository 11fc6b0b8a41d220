"""A verl agent loop over sandgym envs, registered as ``sandgym_agent``.

verl (≥ 0.8; its ``BaseTool`` makes and drops a tool around every call, and ``interaction`` is gone) runs one
agent loop per dataset row. :class:`SandgymAgentLoop` builds the row's env from the ``verl-rl`` export's fields
(``extra_info.env_id`` and ``seed``, the task as ``reward_model.ground_truth``), renders the env's opening
messages and tools with verl's Continuous Token builder, generates through verl's
``server_manager.generate(prompt_ids=...)``, steps the env with the decoded text, and appends the env's
messages with the builder's context merge (mask 0). The model's tokens are never re-tokenized. It returns an
``AgentLoopOutput`` with ``response_mask``, ``response_logprobs`` and ``reward_score`` (the env's own verifier:
verl's reward loop is then skipped) plus ``success`` and ``turns`` in ``extra_fields``.

Use it with the export's ``agent_name`` column set to ``sandgym_agent`` (``sandgym export --to verl-rl``
writes ``tool_agent``; rewrite the column) or ``actor_rollout_ref.rollout.agent.default_agent_loop=sandgym_agent``,
and make it importable in verl's workers with ``actor_rollout_ref.rollout.agent.agent_loop_config_path``
pointing at a YAML file like ``examples/verl_agent_loop.yaml``. Env settings come from
``actor_rollout_ref.rollout.multi_turn``: ``max_assistant_turns`` (default 16); the env's config knobs from
the row's ``extra_info.config`` (a dict), if any.

Importing this module imports verl (``pip install verl``); ``import sandgym`` does not.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sandgym.env import SandgymEnv
from sandgym.integrations._rows import reset_to_row

try:
    from verl.experimental.agent_loop.agent_loop import (  # type: ignore[import-not-found,unused-ignore]
        AgentLoopBase,
        AgentLoopOutput,
        register,
    )
except ImportError as exc:  # pragma: no cover - exercised only without verl
    raise ImportError(
        f"sandgym.integrations.verl needs verl (and cachetools, which its agent loop imports): "
        f"`pip install verl cachetools` ({exc})",
        name=exc.name,
    ) from exc


def _row_task(kwargs: dict[str, Any]) -> tuple[str, int, Any, dict[str, Any]]:
    extra = dict(kwargs.get("extra_info") or {})
    env_id = extra.get("env_id")
    if not env_id:
        raise ValueError("the row's extra_info has no env_id (a `sandgym export --to verl-rl` row has one)")
    task = extra.get("task")
    if task is None:
        task = (kwargs.get("reward_model") or {}).get("ground_truth")
    # An empty ground truth is no task: the env generates one for the seed.
    return str(env_id), int(extra.get("seed") or 0), task or None, dict(extra.get("config") or {})


@register("sandgym_agent")
class SandgymAgentLoop(AgentLoopBase):  # type: ignore[misc,unused-ignore]
    """One episode of a sandgym env per row, token-in/token-out through verl's server manager."""

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        """Play the row's episode; see the module docstring."""
        env_id, seed, task, config = _row_task(kwargs)
        env = SandgymEnv(env_id, config or None)
        observation, _ = reset_to_row(env, task, seed)
        tools = env.tools
        messages = [{"role": m["role"], "content": m["content"]} for m in observation]
        prompt_ids = await self.ct_build_initial_tokens(messages, tools=tools)
        runtime = list(prompt_ids)
        response_mask: list[int] = []
        logprobs: list[float] | None = []
        response_length = self.rollout_config.response_length
        multi_turn = self.rollout_config.get("multi_turn", {}) or {}
        max_turns = int(multi_turn.get("max_assistant_turns") or 16)
        total_reward, success, turns = 0.0, False, 0
        for turn in range(max_turns):
            output = await self.server_manager.generate(
                request_id=uuid4().hex, prompt_ids=runtime, sampling_params=sampling_params
            )
            merged, response_mask, logprobs = await self.ct_merge_assistant_token(
                runtime,
                output.token_ids,
                response_mask,
                logprobs if output.log_probs and logprobs is not None else None,
                assistant_logprobs=output.log_probs or None,
            )
            runtime = merged.token_ids
            turns += 1
            text = self.tokenizer.decode(output.token_ids, skip_special_tokens=True)
            observation, reward, terminated, truncated, info = env.step(text)
            total_reward += float(reward)
            success = bool(info.get("success", False))
            previous = [*messages, {"role": "assistant", "content": text}]
            messages = previous + [{"role": m["role"], "content": m["content"]} for m in observation]
            if terminated or truncated or turn == max_turns - 1 or len(response_mask) >= response_length:
                break
            merged, response_mask, logprobs = await self.ct_merge_context_msg(
                previous, messages, runtime, response_mask, logprobs, tools=tools
            )
            runtime = merged.token_ids
        prompt_ids = runtime[: len(runtime) - len(response_mask)]
        response_ids = runtime[len(prompt_ids) :]
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids[:response_length],
            response_mask=response_mask[:response_length],
            response_logprobs=logprobs[:response_length] if logprobs else None,
            reward_score=total_reward,
            num_turns=len(messages),
            metrics={},
            extra_fields={"turn_scores": [], "tool_rewards": [], "success": success, "turns": turns},
        )
