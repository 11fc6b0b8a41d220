"""Batched stepping: ``VecEnv`` steps N envs on Rust threads with the GIL released."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sandgym import _core


class VecEnv:
    """N envs of one id, reset and stepped as a batch.

    Each method returns one dict per env. A failed env's dict has ``error_kind`` and ``error_message``
    instead of a result (the others are unaffected); reset it to go on.

    Args:
        env_id: registered id or ``.wasm`` path.
        n: number of envs.
        config: the env's configuration knobs.
        fuel: fuel units per guest call.
        memory_mb: guest memory cap in MiB.
        deadline_s: wall-clock limit per guest call in seconds.

    """

    def __init__(
        self,
        env_id: str,
        n: int,
        config: dict[str, Any] | None = None,
        *,
        fuel: int | None = None,
        memory_mb: int | None = None,
        deadline_s: float | None = None,
    ) -> None:
        """Make ``n`` envs; see the class docstring."""
        self._vec = _core.VecEnv(env_id, n, json.dumps(config) if config else None, fuel, memory_mb, deadline_s)
        self.num_envs = n
        self.env_info: dict[str, Any] = self._vec.info

    def __len__(self) -> int:
        """Number of envs."""
        return self.num_envs

    def reset(self, seeds: Sequence[int] | int = 0, tasks: Sequence[dict | None] | None = None) -> list[dict]:
        """Reset every env: env ``i`` gets ``seeds[i]`` (or ``seeds + i`` for an int) and ``tasks[i]``."""
        seed_list = [seeds + i for i in range(self.num_envs)] if isinstance(seeds, int) else list(seeds)
        task_json = None if tasks is None else [None if t is None else json.dumps(t) for t in tasks]
        return self._vec.reset(seed_list, task_json)

    def step(self, actions: Sequence[str | dict]) -> list[dict]:
        """Step env ``i`` with ``actions[i]``: model text (parsed) or an assistant message dict."""
        if all(isinstance(a, str) for a in actions):
            return self._vec.step_text(list(actions))  # type: ignore[arg-type]
        return self._vec.step([_core.parse_action_text(a) if isinstance(a, str) else a for a in actions])

    def run_steps(self, action: dict, rounds: int) -> int:
        """Step every env with ``action`` for ``rounds`` rounds entirely in Rust (auto-reset); returns steps."""
        return self._vec.run_steps(action, rounds)
