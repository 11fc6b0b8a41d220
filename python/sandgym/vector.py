"""The Gymnasium vector env: ``VecEnv`` steps N sandboxed envs of one id in Rust with the GIL released.

``reset(seed, options) -> (obs, infos)`` and ``step(actions) -> (obs, rewards, terminations, truncations,
infos)`` as ``gymnasium.vector.VectorEnv`` defines them, each a single batched call into Rust. The per-env
dicts of the Rust layer stay available as ``reset_slots`` / ``step_slots``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from sandgym import _core
from sandgym.env import reset_info
from sandgym.spaces import ChatAction, Messages, render_messages

#: A slot's ``(seed, task JSON or None)`` for a reset inside a batch.
_Reset = tuple[int, str | None]


def _task_json(task: dict | None) -> str | None:
    return None if task is None else json.dumps(task)


class VecEnv(gymnasium.vector.VectorEnv[tuple, tuple, np.ndarray]):
    """``num_envs`` sandboxed envs of one id as a Gymnasium vector env, stepped in parallel in Rust.

    Every sub-env is the env ``sandgym.make(env_id, ...)`` gives: the same spaces (``single_observation_space``
    is :class:`~sandgym.spaces.Messages`, ``single_action_space`` :class:`~sandgym.spaces.ChatAction`), the same
    per-env ``info``, and slot ``i`` after ``reset(seed=s)`` plays what that env plays after ``reset(seed=s + i)``,
    autoresets included (they draw their seeds as that env's ``reset()`` does). Observations are a tuple of
    message lists, actions a sequence of model text or assistant message dicts (``batch_space`` of these spaces
    is a ``Tuple``). Infos are Gymnasium's dict of arrays, each key with its ``_key`` mask.

    Autoreset follows ``metadata["autoreset_mode"]`` (``autoreset_mode``): ``NEXT_STEP`` (the default, as in
    ``SyncVectorEnv``) resets a finished env on the next ``step`` and ignores its action there; ``SAME_STEP``
    resets it in the step that ends it, with ``infos["final_obs"]`` / ``infos["final_info"]``; ``DISABLED``
    leaves it to ``reset(options={"reset_mask": mask})``.

    A slot whose guest fails (out of fuel, a trap, a deadline, an invalid task) does not raise: its
    ``infos["error_kind"]`` / ``infos["error_message"]`` are set (masks ``_error_kind`` / ``_error_message``),
    its observation is ``[]`` and its reward 0, and a failed step counts as truncated, so autoreset starts it
    again; the other envs' results are unaffected. A slot whose reset failed is reset again by the next
    ``NEXT_STEP`` step.

    Args:
        env_id: registered id or ``.wasm`` path.
        num_envs: number of envs.
        config: the env's configuration knobs.
        fuel: fuel units per guest call.
        memory_mb: guest memory cap in MiB.
        deadline_s: wall-clock limit per guest call in seconds.
        render_mode: ``"ansi"``: :meth:`render` gives each env's conversation as text.
        autoreset_mode: a :class:`gymnasium.vector.AutoresetMode` or its value.

    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        config: dict[str, Any] | None = None,
        *,
        fuel: int | None = None,
        memory_mb: int | None = None,
        deadline_s: float | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> None:
        """Make ``num_envs`` envs; see the class docstring."""
        self._vec = _core.VecEnv(env_id, num_envs, json.dumps(config) if config else None, fuel, memory_mb, deadline_s)
        self.num_envs = num_envs
        self.env_info: dict[str, Any] = self._vec.info
        self.tools: list[dict] = self.env_info["tools"]
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {"render_modes": ["ansi"], "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self.single_observation_space = Messages()
        self.single_action_space = ChatAction(self.tools)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        # Per slot: the generator its autoreset seeds come from (SandgymEnv's np_random), the last
        # observation, whether the next NEXT_STEP step resets it, and its conversation for render().
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._obs: list[list] = [[] for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)
        self._conversations: list[list[dict]] = [[] for _ in range(num_envs)]
        #: Each slot's current task (with its gold answer, where the env has one); None before its reset.
        self.tasks: list[Any] = [None] * num_envs
        self._expose_task = False

    @property
    def id(self) -> str:
        """The env id."""
        return self._vec.id

    def __len__(self) -> int:
        """Number of envs."""
        return self.num_envs

    def _episode_seed(self, slot: int, seed: int | None) -> int:
        """The seed of slot ``slot``'s next episode, drawn as ``SandgymEnv.reset(seed=seed)`` draws it."""
        if seed is not None:
            self._rngs[slot] = seeding.np_random(seed)[0]
            return seed
        if self._rngs[slot] is None:
            self._rngs[slot] = seeding.np_random()[0]
        return int(self._rngs[slot].integers(0, 2**63 - 1))  # type: ignore[union-attr]

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[tuple, dict[str, Any]]:
        """Start an episode in every env (or in those ``options["reset_mask"]`` selects).

        Args:
            seed: ``int``: env ``i`` gets ``seed + i``; a list: one seed (or None) per env; None: each env
                draws its next seed.
            options: ``{"task": {...}}`` plays that task in every reset env, ``{"tasks": [...]}`` one task
                (or None) per env; ``{"reset_mask": np.ndarray}`` (bool, one per env) resets only those;
                ``{"expose_task": True}`` adds each task (gold answer included) to the infos of this and later
                resets. The current tasks are always :attr:`tasks`.

        Returns:
            ``(observations, infos)``: the message lists (unreset envs keep their last one) and the infos of
            the reset envs (``task_id``, ``tools``, ``seed`` and the env's info, as ``sandgym.make``).

        """
        options = dict(options or {})
        seeds = self._seed_list(seed)
        mask = self._reset_mask(options.pop("reset_mask", None))
        if "expose_task" in options:
            self._expose_task = bool(options.pop("expose_task"))
        tasks = options.pop("tasks", None)
        if tasks is None:
            tasks = [options.pop("task", None)] * self.num_envs
        elif len(tasks) != self.num_envs:
            raise ValueError(f"options['tasks'] needs {self.num_envs} entries, got {len(tasks)}")
        resets: list[_Reset | None] = [
            (self._episode_seed(i, seeds[i]), _task_json(tasks[i])) if mask[i] else None for i in range(self.num_envs)
        ]
        outs = self._vec.apply([None] * self.num_envs, resets)
        infos: dict[str, Any] = {}
        for i, out in enumerate(outs):
            if out is not None:
                infos = self._add_info(infos, self._take_reset(i, out, resets[i][0]), i)  # type: ignore[index]
        return tuple(self._obs), infos

    def _seed_list(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int):
            return [seed + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed needs {self.num_envs} entries, got {len(seeds)}")
        return seeds

    def _reset_mask(self, mask: Any) -> np.ndarray:
        if mask is None:
            return np.ones(self.num_envs, dtype=np.bool_)
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must be a bool np.ndarray of shape ({self.num_envs},)")
        if not mask.any():
            raise ValueError("options['reset_mask'] selects no env")
        return mask

    def _take_reset(self, slot: int, out: dict, seed: int) -> dict[str, Any]:
        """Records slot ``slot``'s reset output; returns its info (as ``SandgymEnv.reset``'s)."""
        self._autoreset[slot] = "error_kind" in out
        if "error_kind" in out:
            self._obs[slot] = []
            self._conversations[slot] = []
            return {"error_kind": out["error_kind"], "error_message": out["error_message"], "seed": seed}
        self._obs[slot] = list(out["messages"])
        self._conversations[slot] = list(out["messages"])
        self.tasks[slot] = out["task"]
        info = reset_info(out, self.tools, seed, expose_task=self._expose_task)
        if out.get("user_turn") is not None:
            info["user_turn"] = out["user_turn"]
        return info

    def step(self, actions: Sequence[str | dict]) -> tuple[tuple, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Apply ``actions[i]`` (model text, parsed for tool calls, or an assistant message dict) to env ``i``.

        Returns:
            ``(observations, rewards, terminations, truncations, infos)``: a tuple of message lists, float64
            rewards and bool flags (one per env), and Gymnasium's infos (``success``, the env's info, and for a
            failed env ``error_kind`` / ``error_message``). Envs reset by autoreset report reward 0 and the
            reset's observation and info.

        """
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"step needs {self.num_envs} actions, got {len(actions)}")
        n = self.num_envs
        resets: list[_Reset | None] = [None] * n
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            resets = [(self._episode_seed(i, None), None) if self._autoreset[i] else None for i in range(n)]
        batch = [None if resets[i] is not None else actions[i] for i in range(n)]
        outs = self._vec.apply(batch, resets, self.render_mode == "ansi")
        rewards = np.zeros(n, dtype=np.float64)
        terminations = np.zeros(n, dtype=np.bool_)
        truncations = np.zeros(n, dtype=np.bool_)
        slot_infos: list[dict[str, Any]] = []
        for i, out in enumerate(outs):
            if resets[i] is not None:
                slot_infos.append(self._take_reset(i, out, resets[i][0]))  # type: ignore[index, arg-type]
            else:
                info, rewards[i], terminations[i], truncations[i] = self._take_step(i, out, actions[i])  # type: ignore[arg-type]
                slot_infos.append(info)
        infos: dict[str, Any] = {}
        done = terminations | truncations
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            for j in np.flatnonzero(done).tolist():
                infos = self._add_info(infos, {"final_obs": self._obs[j], "final_info": slot_infos[j]}, j)
            resets = [(self._episode_seed(i, None), None) if done[i] else None for i in range(n)]
            for i, out in enumerate(self._vec.apply([None] * n, resets)):
                if out is not None:
                    slot_infos[i] = self._take_reset(i, out, resets[i][0])  # type: ignore[index]
        for i, info in enumerate(slot_infos):
            infos = self._add_info(infos, info, i)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._autoreset |= done
        return tuple(self._obs), rewards, terminations, truncations, infos

    def _take_step(self, slot: int, out: dict, action: str | dict) -> tuple[dict[str, Any], float, bool, bool]:
        """Records slot ``slot``'s step output; returns its info (as ``SandgymEnv.step``'s) and flags."""
        if "error_kind" in out:
            self._obs[slot] = []
            return {"error_kind": out["error_kind"], "error_message": out["error_message"]}, 0.0, False, True
        self._obs[slot] = list(out["messages"])
        if self.render_mode == "ansi":
            assistant = out.pop("action", None) or dict(action)  # type: ignore[arg-type]
            message = {k: v for k, v in assistant.items() if k != "format_error"}
            self._conversations[slot].extend([{"role": "assistant", **message}, *out["messages"]])
        info = dict(out.get("info") or {})
        info["success"] = out["success"]
        if out.get("user_turn") is not None:
            info["user_turn"] = out["user_turn"]
        return info, float(out["reward"]), bool(out["terminated"]), bool(out["truncated"])

    def render(self) -> tuple[str, ...] | None:
        """Each env's conversation as text (``render_mode="ansi"``), as ``SandgymEnv.render`` gives it."""
        if self.render_mode != "ansi":
            return None
        return tuple(render_messages(c) for c in self._conversations)

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release: the sandboxes are freed with the object."""

    # The Rust layer's per-env dicts, for callers that want the raw outputs (benchmarks, fault tests).

    def reset_slots(self, seeds: Sequence[int] | int = 0, tasks: Sequence[dict | None] | None = None) -> list[dict]:
        """Reset every env: env ``i`` gets ``seeds[i]`` (or ``seeds + i`` for an int) and ``tasks[i]``.

        Returns one output dict per env (``messages``, ``task_id``, ``task``, ``info``); a failed env's dict
        has ``error_kind`` and ``error_message`` instead. Bypasses the Gymnasium bookkeeping: call
        :meth:`reset` before mixing in :meth:`step`.
        """
        seed_list = [seeds + i for i in range(self.num_envs)] if isinstance(seeds, int) else list(seeds)
        task_json = None if tasks is None else [_task_json(t) for t in tasks]
        return self._vec.reset(seed_list, task_json)

    def step_slots(self, actions: Sequence[str | dict]) -> list[dict]:
        """Step env ``i`` with ``actions[i]`` (model text or an assistant message dict); no autoreset.

        Returns one output dict per env (``messages``, ``reward``, ``terminated``, ``truncated``, ``success``,
        ``info``); a failed env's dict has ``error_kind`` and ``error_message`` instead.
        """
        if all(isinstance(a, str) for a in actions):
            return self._vec.step_text(list(actions))  # type: ignore[arg-type]
        return self._vec.step([_core.parse_action_text(a) if isinstance(a, str) else a for a in actions])

    def run_steps(self, action: dict, rounds: int) -> int:
        """Step every env with ``action`` for ``rounds`` rounds entirely in Rust (auto-reset); returns steps."""
        return self._vec.run_steps(action, rounds)
