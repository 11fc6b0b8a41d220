"""The Gymnasium face of a sandboxed env, with chat messages as observations.

``reset(seed, options) -> (obs, info)`` and ``step(action) -> (obs, reward, terminated, truncated, info)``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium

from sandgym import _core
from sandgym.spaces import ChatAction, Messages, render_messages


def _config_json(config: dict[str, Any] | None) -> str | None:
    return json.dumps(config) if config else None


def reset_info(out: dict[str, Any], tools: list[dict], seed: int, *, expose_task: bool) -> dict[str, Any]:
    """The ``info`` of a reset (an env's or a ``VecEnv`` slot's): ``task_id``, ``tools``, ``seed``, the env's info.

    Tasks carry their gold answers (countdown's ``solution``, code-math's ``answer``, tau's actions), so the task
    itself is added only on request (``expose_task``): nothing meant for the agent or a logger leaks it by default.
    """
    info: dict[str, Any] = {"task_id": out["task_id"], "tools": tools, "seed": seed}
    if expose_task:
        info["task"] = out["task"]
    info.update(out.get("info") or {})
    return info


#: Who answers the simulated user's turns: ``"expert"`` (the env's scripted user) or a function from the
#: user's view (a list of chat messages, system prompt first, the agent's words as ``user`` messages) to
#: the user's reply text.
UserPolicy = str | Callable[[list[dict]], str]


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
        user_policy: who plays the simulated user in envs that have one (tau envs with
            ``{"mode": "user"}``): ``"expert"`` (the env's scripted user) or a function from the user's
            view (chat messages) to its reply text. With it, ``reset`` and ``step`` answer the user's
            turns themselves and return the user's messages with the agent's observation. Without it,
            a pending user turn is ``info["user_turn"]`` (``{"messages": [...]}``, the user's view) and
            must be answered with :meth:`user_reply` before the next ``step``.

    """

    # `render_fps` only to satisfy Gymnasium's checker, which warns without it; text frames have no rate.
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        env_id: str,
        config: dict[str, Any] | None = None,
        *,
        fuel: int | None = None,
        memory_mb: int | None = None,
        deadline_s: float | None = None,
        render_mode: str | None = None,
        user_policy: UserPolicy | None = None,
    ) -> None:
        """Make the env; see the class docstring."""
        if isinstance(user_policy, str) and user_policy != "expert":
            raise ValueError(f'user_policy must be "expert" or a function, got {user_policy!r}')
        self._env = _core.Env(env_id, _config_json(config), fuel, memory_mb, deadline_s)
        #: The env's configuration knobs, as given.
        self.config: dict[str, Any] = dict(config or {})
        self.user_policy = user_policy
        #: The pending simulated-user turn (``{"messages": [...]}``), or None on the agent's turn.
        self.user_turn: dict | None = None
        self._episode_seed = 0
        self._user_turns = 0
        self.env_info: dict[str, Any] = self._env.info
        self.tools: list[dict] = self.env_info["tools"]
        self.observation_space = Messages()
        self.action_space = ChatAction(self.tools)
        self.render_mode = render_mode
        self.conversation: list[dict] = []
        #: The current episode's task (with its gold answer, where the env has one); None before ``reset``.
        self.task: Any = None

    @property
    def id(self) -> str:
        """The env id."""
        return self._env.id

    def __repr__(self) -> str:
        """The env id and its configuration, e.g. ``SandgymEnv('parity-v0', config={'d': 8})``."""
        config = f", config={self.config!r}" if self.config else ""
        return f"{type(self).__name__}({self.id!r}{config})"

    def __str__(self) -> str:
        """The same as ``repr``: Gymnasium's default names only the class."""
        return repr(self)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[list, dict[str, Any]]:
        """Start an episode.

        Args:
            seed: seeds the task generator and the guest's randomness; same seed, same episode.
            options: ``{"task": {...}}`` plays a given task instead of a generated one;
                ``{"expose_task": True}`` adds the task itself to ``info`` (for debugging: tasks hold their
                gold answers). The current task is always :attr:`task`.

        Returns:
            ``(messages, info)`` with ``info`` holding ``task_id``, ``seed``, ``tools`` and the env's info.

        """
        super().reset(seed=seed)
        episode_seed = seed if seed is not None else int(self.np_random.integers(0, 2**63 - 1))
        task = (options or {}).get("task")
        out = self._env.reset(episode_seed, json.dumps(task) if task is not None else None)
        self._episode_seed = episode_seed
        self._user_turns = 0
        self.conversation = list(out["messages"])
        self.user_turn = out.get("user_turn")
        self.task = out["task"]
        info = reset_info(out, self.tools, episode_seed, expose_task=bool((options or {}).get("expose_task")))
        messages = list(out["messages"])
        if self.user_turn is not None:
            if self.user_policy is None:
                info["user_turn"] = self.user_turn
            else:
                # The user opens: the agent's first observation holds the opening message too.
                user_messages, _, terminated, truncated, user_info = self._answer_user()
                messages.extend(user_messages)
                if terminated or truncated:
                    info["episode_over"] = user_info
        return messages, info

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
        self.user_turn = out.get("user_turn")
        info = dict(out.get("info") or {})
        info["success"] = out["success"]
        messages = list(out["messages"])
        reward, terminated, truncated = float(out["reward"]), bool(out["terminated"]), bool(out["truncated"])
        if self.user_turn is not None:
            if self.user_policy is None:
                info["user_turn"] = self.user_turn
            else:
                user_messages, user_reward, terminated, truncated, info = self._answer_user()
                messages.extend(user_messages)
                reward += user_reward
        return messages, reward, terminated, truncated, info

    def user_reply(self, content: str) -> tuple[list, SupportsFloat, bool, bool, dict[str, Any]]:
        """Answer the pending simulated-user turn (``info["user_turn"]``) with the user's text.

        The user's ``###STOP###`` ends the episode (tau-bench's convention) and the verifier runs.

        Returns:
            ``(messages, reward, terminated, truncated, info)`` like :meth:`step`: the user's message as
            the agent sees it, and ``info["user_turn"]`` if the user is asked again.

        """
        return self._user_output(self._env.user_step(content))

    def _user_output(self, out: dict[str, Any]) -> tuple[list, SupportsFloat, bool, bool, dict[str, Any]]:
        """Record the output of a user turn and return it as :meth:`user_reply` does."""
        self.conversation.extend(out["messages"])
        self.user_turn = out.get("user_turn")
        info = dict(out.get("info") or {})
        info["success"] = out["success"]
        if self.user_turn is not None:
            info["user_turn"] = self.user_turn
        return out["messages"], float(out["reward"]), bool(out["terminated"]), bool(out["truncated"]), info

    def _answer_user(self) -> tuple[list, float, bool, bool, dict[str, Any]]:
        """Let ``user_policy`` answer user turns until it is the agent's turn or the episode ends.

        Each turn is played by the core (``sandgym_core::collect::user``), as in ``sandgym.collect``.
        """
        messages: list = []
        reward = 0.0
        result: tuple[list, SupportsFloat, bool, bool, dict[str, Any]] = ([], 0.0, False, False, {})
        while self.user_turn is not None:
            out = self._env.play_user(self.user_policy, self.user_turn, self._episode_seed, self._user_turns)
            self._user_turns += 1
            result = self._user_output(out)
            messages.extend(result[0])
            reward += float(result[1])
        _, _, terminated, truncated, info = result
        info.pop("user_turn", None)
        return messages, reward, terminated, truncated, info

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
        clone.user_turn = copy.deepcopy(self.user_turn)
        # The fork draws its own future seeds: same state, same stream, but no shared generator object.
        clone._np_random = copy.deepcopy(self._np_random)
        clone.observation_space = Messages()
        clone.action_space = ChatAction(self.tools)
        return clone

    def render(self) -> str | None:
        """The conversation as text (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        return render_messages(self.conversation)

    def close(self) -> None:
        """Nothing to release: the sandbox is freed with the object."""


def make(
    env_id: str,
    *,
    fuel: int | None = None,
    memory_mb: int | None = None,
    deadline_s: float | None = None,
    render_mode: str | None = None,
    user_policy: UserPolicy | None = None,
    **config: Any,
) -> SandgymEnv:
    """Make an env by id or ``.wasm`` path; keyword arguments other than the limits are env config knobs.

    Example:
        >>> env = sandgym.make("parity-v0", d=8)
        >>> obs, info = env.reset(seed=0)

    """
    return SandgymEnv(
        env_id,
        config or None,
        fuel=fuel,
        memory_mb=memory_mb,
        deadline_s=deadline_s,
        render_mode=render_mode,
        user_policy=user_policy,
    )
