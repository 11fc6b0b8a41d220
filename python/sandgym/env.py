"""The Gymnasium face of a sandboxed env, with chat messages as observations.

``reset(seed, options) -> (obs, info)`` and ``step(action) -> (obs, reward, terminated, truncated, info)``.
"""

from __future__ import annotations

import copy
import json
from typing import Any, SupportsFloat

import gymnasium

from sandgym import _core
from sandgym.spaces import ChatAction, Messages


def _config_json(config: dict[str, Any] | None) -> str | None:
    return json.dumps(config) if config else None


class SandgymEnv(gymnasium.Env[list, Any]):
    """A sandboxed wasm environment with the Gymnasium API.

    Observations are lists of chat messages to append to the conversation (the system prompt and task
    after ``reset``; tool results after ``step``). Actions are model text (tool calls are parsed from
    Hermes ``<tool_call>`` blocks or OpenAI JSON; unparseable text becomes a ``Format error`` observation)
    or an assistant message dict with ``tool_calls``.

    Args:
        env_id: registered id (``countdown-v0``) or a path to a ``.wasm`` file.
        config: the env's configuration knobs.
        fuel: fuel units per guest call.
        memory_mb: guest memory cap in MiB.
        deadline_s: wall-clock limit per guest call in seconds.
        render_mode: ``"ansi"`` renders the conversation as text.

    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        env_id: str,
        config: dict[str, Any] | None = None,
        *,
        fuel: int | None = None,
        memory_mb: int | None = None,
        deadline_s: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        """Make the env; see the class docstring."""
        self._env = _core.Env(env_id, _config_json(config), fuel, memory_mb, deadline_s)
        self.env_info: dict[str, Any] = self._env.info
        self.tools: list[dict] = self.env_info["tools"]
        self.observation_space = Messages()
        self.action_space = ChatAction(self.tools)
        self.render_mode = render_mode
        self.conversation: list[dict] = []

    @property
    def id(self) -> str:
        """The env id."""
        return self._env.id

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[list, dict[str, Any]]:
        """Start an episode.

        Args:
            seed: seeds the task generator and the guest's randomness; same seed, same episode.
            options: ``{"task": {...}}`` plays a given task instead of a generated one.

        Returns:
            ``(messages, info)`` with ``info`` holding ``task_id``, ``task``, ``tools`` and the env's info.

        """
        super().reset(seed=seed)
        episode_seed = seed if seed is not None else int(self.np_random.integers(0, 2**63 - 1))
        task = (options or {}).get("task")
        out = self._env.reset(episode_seed, json.dumps(task) if task is not None else None)
        self.conversation = list(out["messages"])
        info = {"task_id": out["task_id"], "task": out["task"], "tools": self.tools, "seed": episode_seed}
        info.update(out.get("info") or {})
        return out["messages"], info

    def step(self, action: Any) -> tuple[list, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one action (model text or an assistant message dict).

        Returns:
            ``(messages, reward, terminated, truncated, info)``; ``terminated`` means the task ended,
            ``truncated`` that the env's turn limit cut it off. ``info["success"]`` tells if it was solved.

        """
        if isinstance(action, str):
            out = self._env.step_text(action)
            assistant = out.pop("action")
        else:
            out = self._env.step(action)
            assistant = dict(action)
        self.conversation.append({"role": "assistant", **{k: v for k, v in assistant.items() if k != "format_error"}})
        self.conversation.extend(out["messages"])
        info = dict(out.get("info") or {})
        info["success"] = out["success"]
        return out["messages"], float(out["reward"]), bool(out["terminated"]), bool(out["truncated"]), info

    def expert_action(self) -> dict | None:
        """The env's expert action in the current state, or None."""
        return self._env.expert()

    def admissible_actions(self) -> list[dict]:
        """The admissible actions in the current state (empty if the env cannot list them)."""
        return self._env.actions()

    def snapshot(self) -> _core.Snapshot:
        """Copy the env's complete state (guest memory and globals)."""
        return self._env.snapshot()

    def restore(self, snapshot: _core.Snapshot) -> None:
        """Rewind to a snapshot of this env or of a fork of it."""
        self._env.restore(snapshot)

    def fork(self) -> SandgymEnv:
        """An independent copy in the same state: same actions give the same outputs."""
        clone = object.__new__(SandgymEnv)
        clone.__dict__.update(self.__dict__)
        clone._env = self._env.fork()
        clone.conversation = list(self.conversation)
        # The fork draws its own future seeds: same state, same stream, but no shared generator object.
        clone._np_random = copy.deepcopy(self._np_random)
        clone.observation_space = Messages()
        clone.action_space = ChatAction(self.tools)
        return clone

    def render(self) -> str | None:
        """The conversation as text (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        lines = []
        for m in self.conversation:
            lines.append(f"[{m['role']}] {m.get('content') or ''}")
            for call in m.get("tool_calls") or []:
                lines.append(f"    -> {call['name']}({call['arguments']})")
        return "\n".join(lines)

    def close(self) -> None:
        """Nothing to release: the sandbox is freed with the object."""


def make(
    env_id: str,
    *,
    fuel: int | None = None,
    memory_mb: int | None = None,
    deadline_s: float | None = None,
    render_mode: str | None = None,
    **config: Any,
) -> SandgymEnv:
    """Make an env by id or ``.wasm`` path; keyword arguments other than the limits are env config knobs.

    Example:
        >>> env = sandgym.make("parity-v0", d=8)
        >>> obs, info = env.reset(seed=0)

    """
    return SandgymEnv(
        env_id, config or None, fuel=fuel, memory_mb=memory_mb, deadline_s=deadline_s, render_mode=render_mode
    )
