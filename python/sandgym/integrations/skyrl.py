"""A SkyRL-Gym environment over sandgym envs: the ``env_class`` of a ``sandgym export --to skyrl`` dataset.

SkyRL's generator (skyrl-train ``SkyRLGymGenerator.agent_loop``) makes one env per rollout with
``skyrl_gym.make(env_class, env_config=cfg.environment.skyrl_gym[env_class], extras=env_extras)``, where
``env_extras`` are the dataset row's columns other than ``prompt`` and ``env_class`` (plus ``max_turns``,
which the generator sets from ``generator.max_turns``). It then calls ``env.init(prompt)``, feeds every
model response to ``env.step(text)`` until ``done``, reads ``env.get_metrics()`` and calls ``env.close()``.

The extras of a sandgym SkyRL export are ``env_id``, ``task`` (JSON text) and ``seed``: the env replays
that exact task, parses tool calls from the model's text (Hermes ``<tool_call>`` blocks or OpenAI JSON,
as :meth:`sandgym.SandgymEnv.step` does) and scores the episode with its own verifier. Text it cannot
parse becomes a ``Format error`` observation, not an exception.

Register the env in the process that runs SkyRL's generator (SkyRL's examples do it in their
``skyrl_entrypoint`` Ray task)::

    from sandgym.integrations.skyrl import register
    register()                                   # env_class "sandgym", the export's default

The environment's ``env_config`` (``+environment.skyrl_gym.sandgym.<key>=...`` on SkyRL's command line)
takes these keys, all optional:

- ``config``: the env's configuration knobs (what ``sandgym.make(env_id, **config)`` takes).
- ``fuel``, ``memory_mb``, ``deadline_s``: the sandbox limits of :func:`sandgym.make`.
- ``observation_format``: ``"chat"`` (default) returns the env's messages as they are: tool results as
  ``{"role": "tool", "name", "tool_call_id", "content"}`` messages (chat templates with tool support,
  e.g. Qwen's, render them as ``<tool_response>`` turns), other feedback as ``user`` messages.
  ``"user"`` folds each step's messages into one ``user`` message, tool results wrapped in
  ``<tool_response>`` tags, for chat templates without a tool role (SkyRL's own envs answer as ``user``).

This module needs SkyRL-Gym (``pip install skyrl-gym``); importing it without raises an ImportError
that says so. ``import sandgym`` does not import it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

try:
    import skyrl_gym  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from omegaconf import OmegaConf  # type: ignore[import-not-found,unused-ignore]  # a skyrl-gym dependency
    from skyrl_gym.envs.base_text_env import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        BaseTextEnv,
        BaseTextEnvStepOutput,
    )
except ImportError as exc:  # pragma: no cover - exercised only without skyrl-gym
    raise ImportError(
        f"sandgym.integrations.skyrl needs SkyRL-Gym: `pip install skyrl-gym` ({exc})",
        name=exc.name,
    ) from exc

from sandgym import _core
from sandgym.env import SandgymEnv, make
from sandgym.errors import GuestError

__all__ = ["ENTRY_POINT", "ENV_CONFIG_KEYS", "Conversation", "ObservationFormat", "SandgymSkyRLEnv", "register"]

Conversation = list[dict[str, str]]
"""SkyRL-Gym's ``ConversationType``: chat messages with string values (OpenAI message format)."""

ENTRY_POINT: str = "sandgym.integrations.skyrl:SandgymSkyRLEnv"
"""The import path :func:`register` gives SkyRL-Gym, so any process (e.g. a Ray worker) can load the class."""

ENV_CONFIG_KEYS: frozenset[str] = frozenset({"config", "fuel", "memory_mb", "deadline_s", "observation_format"})
"""The keys :class:`SandgymSkyRLEnv` accepts in ``env_config``; any other key is an error (a typo)."""

ObservationFormat = Literal["chat", "user"]
"""How observations are shaped: the env's messages as they are (``"chat"``) or one ``user`` message (``"user"``)."""


def _plain_config(env_config: Any) -> dict[str, Any]:
    """``env_config`` as plain Python values (SkyRL passes an OmegaConf ``DictConfig``)."""
    if env_config is None:
        return {}
    if OmegaConf.is_config(env_config):
        container = OmegaConf.to_container(env_config, resolve=True)
        if not isinstance(container, dict):
            raise TypeError(f"env_config must be a mapping, got {type(container).__name__}")
        return {str(k): v for k, v in container.items()}
    if isinstance(env_config, Mapping):
        return dict(env_config)
    raise TypeError(f"env_config must be a mapping, got {type(env_config).__name__}")


def _messages(messages: Sequence[Mapping[str, Any]]) -> Conversation:
    """Chat messages with string values and no null fields (SkyRL's ``MessageType`` is ``Dict[str, str]``)."""
    return [{str(k): str(v) for k, v in m.items() if v is not None} for m in messages]


class SandgymSkyRLEnv(BaseTextEnv):  # type: ignore[misc,unused-ignore]
    """A SkyRL-Gym text env that plays one sandgym episode, built from a SkyRL dataset row.

    Made by SkyRL as ``skyrl_gym.make(env_class, env_config=..., extras=...)``; see the module docstring
    for the ``env_config`` keys.

    Args:
        env_config: the env class's section of SkyRL's ``environment.skyrl_gym`` config (a mapping or
            ``DictConfig``; may be empty).
        extras: the dataset row's other columns. Read: ``env_id`` (required), ``task`` (the task as JSON
            text or an object; default ``reward_spec["ground_truth"]``, else the env generates a task from
            the seed), ``seed`` (default: drawn by the env), ``max_turns`` (set by SkyRL's generator:
            after that many steps the episode ends, truncated, unless it ended first).

    Attributes:
        env: the sandgym env (None once closed).
        env_id: the sandgym env id.
        seed: the episode seed.
        task: the task the episode replays, or None.
        max_turns: SkyRL's turn limit, or None for the env's own limit only.
        observation_format: ``"chat"`` or ``"user"``.
        turns: steps taken in this episode.
        total_reward: the sum of the step rewards so far.
        success: whether the episode has been solved.
        done: whether the episode is over.

    """

    def __init__(self, env_config: Any = None, extras: Mapping[str, Any] | None = None) -> None:
        """Make the sandgym env from ``extras``; the episode starts in :meth:`init`."""
        super().__init__()
        options = _plain_config(env_config)
        unknown = sorted(set(options) - ENV_CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown sandgym env_config keys {unknown}; known: {sorted(ENV_CONFIG_KEYS)}")
        extras = dict(extras or {})
        if "env_id" not in extras:
            raise ValueError(
                "the sandgym SkyRL env needs the env extras of a `sandgym export --to skyrl` row "
                f"(env_id, task, seed); got columns {sorted(extras)}"
            )
        observation_format = options.get("observation_format", "chat")
        if observation_format not in ("chat", "user"):
            raise ValueError(f'observation_format must be "chat" or "user", got {observation_format!r}')
        self.observation_format: ObservationFormat = observation_format
        self.env_id: str = str(extras["env_id"])
        seed = extras.get("seed")
        self.seed: int | None = None if seed is None else int(seed)  # numpy integers from pandas, too
        task = extras.get("task")
        if task is None:
            task = (extras.get("reward_spec") or {}).get("ground_truth")
        self.task: Any = json.loads(task) if isinstance(task, str) else task
        max_turns = extras.get("max_turns")
        self.max_turns: int | None = None if max_turns is None else int(max_turns)
        config = options.get("config") or {}
        if not isinstance(config, Mapping):
            raise TypeError(f"env_config.config must be a mapping, got {type(config).__name__}")
        self.env: SandgymEnv | None = make(
            self.env_id,
            fuel=options.get("fuel"),
            memory_mb=options.get("memory_mb"),
            deadline_s=options.get("deadline_s"),
            **config,
        )
        self.turns: int = 0
        self.total_reward: float = 0.0
        self.success: bool = False
        self.done: bool = False
        self._started = False

    def init(self, prompt: Conversation) -> tuple[Conversation, dict[str, Any]]:
        """Start the episode: reset the sandgym env on the row's task and seed.

        Args:
            prompt: the row's ``prompt`` (SkyRL passes a copy). An export's prompt is exactly the
                messages the env starts with, so it is returned as given; an empty prompt is replaced by
                the env's first messages.

        Returns:
            ``(prompt, metadata)``: the conversation the model starts from, and ``env_id``, ``task_id``
            and ``seed``.

        """
        env = self._live_env()
        options = None if self.task is None else {"task": self.task}
        messages, info = env.reset(seed=self.seed, options=options)
        if "user_turn" in info:
            raise ValueError(
                f"{self.env_id} waits for a simulated user's reply, which this adapter does not play; "
                "export an env configured without a simulated user"
            )
        self.turns, self.total_reward, self.success, self.done = 0, 0.0, False, False
        self._started = True
        first = _messages(prompt) if prompt is not None and len(prompt) > 0 else _messages(messages)
        return first, {"env_id": self.env_id, "task_id": info["task_id"], "seed": info["seed"]}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """Apply one model response (text; tool calls are parsed from it).

        Args:
            action: the model's response text for this turn.

        Returns:
            A ``BaseTextEnvStepOutput``: ``observations`` (the env's reply as chat messages; empty once
            ``done``), ``reward`` (this step's reward; the rewards of an episode sum to the sandgym
            trajectory's ``total_reward``), ``done``, and ``metadata`` (the env's step info with
            ``success``, plus ``terminated``, ``truncated`` and ``turn``; ``error`` and ``error_message``
            if the guest failed, which ends the episode with reward 0).

        Raises:
            RuntimeError: before :meth:`init`, after the episode ended, or after :meth:`close`.

        """
        env = self._live_env()
        if not self._started:
            raise RuntimeError("call init(prompt) before step()")
        if self.done:
            raise RuntimeError("the episode is over (done was returned); make a new env")
        self.turns += 1
        try:
            messages, reward, terminated, truncated, info = env.step(action)
        except GuestError as exc:
            # The guest failed (out of fuel, deadline, memory, trap): its episode ends, the training run goes on.
            self.done = True
            metadata = {"error": type(exc).__name__, "error_message": str(exc), "turn": self.turns}
            metadata.update(success=False, terminated=False, truncated=False)
            return BaseTextEnvStepOutput(observations=[], reward=0.0, done=True, metadata=metadata)
        reward = float(reward)
        self.total_reward += reward
        self.success = bool(info.get("success", False))
        cut = self.max_turns is not None and self.turns >= self.max_turns and not (terminated or truncated)
        self.done = bool(terminated or truncated or cut)
        metadata = dict(info)
        metadata.update(terminated=bool(terminated), truncated=bool(truncated or cut), turn=self.turns)
        observations = [] if self.done else self._observations(messages)
        return BaseTextEnvStepOutput(observations=observations, reward=reward, done=self.done, metadata=metadata)

    def get_metrics(self) -> dict[str, Any]:
        """Episode metrics SkyRL logs per env class (averaged over episodes): success, turns, total reward."""
        return {"success": float(self.success), "turns": self.turns, "total_reward": self.total_reward}

    def close(self) -> None:
        """Release the sandbox now (SkyRL makes one env per rollout); calling it again does nothing."""
        if self.env is not None:
            self.env.close()
            self.env = None

    def _live_env(self) -> SandgymEnv:
        if self.env is None:
            raise RuntimeError("the env is closed")
        return self.env

    def _observations(self, messages: Sequence[Mapping[str, Any]]) -> Conversation:
        """The env's messages in the configured observation format."""
        if self.observation_format == "chat":
            return _messages(messages)
        # The Rust core writes the Hermes format (sandgym_core::chat), as for every other chat text.
        return [{"role": "user", "content": _core.render_user_turn([dict(m) for m in messages])}] if messages else []


def register(name: str = "sandgym") -> str:
    """Register :class:`SandgymSkyRLEnv` in SkyRL-Gym's registry as ``name`` (the export's ``env_class``).

    Registering the same name again is a no-op; a name already taken by another env is an error.

    Args:
        name: the env id SkyRL looks up (``env_class`` of the rows, or ``environment.env_class``).

    Returns:
        ``name``.

    Raises:
        skyrl_gym.error.RegistrationError: if ``name`` is registered to another entry point.

    """
    existing = skyrl_gym.registry.get(name)
    if existing is not None:
        if existing.entry_point in (ENTRY_POINT, SandgymSkyRLEnv):
            return name
        raise skyrl_gym.error.RegistrationError(
            f"SkyRL-Gym env `{name}` is already registered to {existing.entry_point!r}; pick another name"
        )
    skyrl_gym.register(id=name, entry_point=ENTRY_POINT)
    return name
