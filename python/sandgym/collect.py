"""Collect trajectories from Python: the same engine as ``sandgym collect``, returning Arrow or writing Parquet."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandgym import _core
from sandgym.policies import PolicyLike, as_policy


@dataclass
class CollectResult:
    """Figures of a collection run, plus the rows when they were kept in memory.

    ``table`` implements the Arrow PyCapsule interface: ``pyarrow.table(result.table)`` or
    ``polars.DataFrame(result.table)`` import it without copying.
    """

    run_id: str
    episodes: int
    successes: int
    success_rate: float
    errors: int
    steps: int
    total_reward: float
    wall_time_s: float
    steps_per_second: float
    files: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    table: _core.ArrowTable | None = None

    def to_arrow(self) -> Any:
        """The rows as a ``pyarrow.Table`` (requires pyarrow); reads the files when written to disk."""
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        if self.table is not None:
            return pa.table(self.table)
        return pa.concat_tables([pq.read_table(f) for f in self.files])


def list_envs() -> list[dict[str, Any]]:
    """Every bundled env as ``{"id": ..., "info": {...}}`` (info holds tools, prompt, capabilities)."""
    return _core.list_envs()


def collect(
    envs: str | Sequence[str] | None = None,
    episodes: int = 100,
    *,
    seed: int = 0,
    policy: PolicyLike = "expert",
    max_turns: int = 64,
    out_dir: str | Path | None = None,
    tasks: Sequence[dict] | None = None,
    config: dict[str, Any] | None = None,
    fuel: int | None = None,
    memory_mb: int | None = None,
    deadline_s: float | None = None,
    threads: int | None = None,
    run_id: str | None = None,
    resume: bool = False,
    user_policy: PolicyLike | None = None,
    group_size: int = 1,
    advantage: str | None = None,
    reward: str = "env",
    overlong: tuple[int, int, float] | None = None,
    pass_rates: str | Path | None = None,
    drop_pass_rate: float = 0.9,
) -> CollectResult:
    """Run ``episodes`` episodes per env in parallel and keep the trajectories.

    Args:
        envs: env ids or ``.wasm`` paths; default every bundled env.
        episodes: episodes per env.
        seed: seed of each env's first episode; episode ``i`` uses ``seed + i``.
        policy: ``"expert"``, ``"random"``, or a policy of :mod:`sandgym.policies`: ``OpenAIPolicy``
            (an OpenAI-compatible server), ``ReplayPolicy`` (earlier trajectories), ``CallablePolicy``
            or any callable mapping a batch of observations to a batch of actions.
        max_turns: turns after which an episode is truncated.
        out_dir: write Parquet part files there instead of returning a table.
        tasks: tasks to play in turn (each env's task format) instead of generated ones.
        config: env configuration knobs.
        fuel: fuel units (about one per wasm instruction) per guest call.
        memory_mb: guest memory cap in MiB.
        deadline_s: wall-clock limit per guest call in seconds.
        threads: worker threads (default one per core).
        run_id: identifies the run in every row (default: generated).
        resume: skip episodes whose rows are already in ``out_dir`` (continue a killed run with the same
            arguments).
        user_policy: ``"expert"`` (the env's scripted user), ``"random"``, or a policy as for ``policy``:
            plays the simulated user when an env asks for user turns (tau envs with
            ``config={"mode": "user"}``). Its messages are listed in the ``user_turns`` column and its name
            in ``user_policy``.
        group_size: rollouts per task: each planned episode becomes a group of this many episodes on the
            same task and seed, sampled with different (reproducible) seeds, sharing a ``group_id``.
        advantage: ``"grpo"``, ``"dr-grpo"`` or ``"batch"``: advantages computed as each group completes
            (default ``"grpo"`` when ``group_size > 1``); see :func:`sandgym.compute_advantages`.
        reward: reward preset the advantages are computed from: ``"env"``, ``"outcome"``,
            ``"demystify-paper"`` or ``"demystify-code"``.
        overlong: overlong shaping ``(max_len, buffer, penalty)`` on the characters the agent wrote.
        pass_rates: a per-prompt pass-rate history file (created if missing): prompts at or above
            ``drop_pass_rate`` are not played, and this run's outcomes are added to it.
        drop_pass_rate: the pass rate at or above which a prompt is dropped.

    Returns:
        A :class:`CollectResult`.

    """
    if envs is None:
        env_ids = [spec["id"] for spec in _core.list_envs()]
    elif isinstance(envs, str):
        env_ids = [envs]
    else:
        env_ids = list(envs)
    run = {
        "envs": env_ids,
        "episodes": episodes,
        "seed": seed,
        "max_turns": max_turns,
        "out_dir": None if out_dir is None else str(out_dir),
        "tasks": None if tasks is None else list(tasks),
        "config": config or None,
        "fuel": fuel,
        "memory_mb": memory_mb,
        "deadline_s": deadline_s,
        "threads": threads,
        "run_id": run_id,
        "resume": resume,
        "group_size": group_size,
        "advantage": advantage,
        "reward": reward,
        "overlong": None if overlong is None else list(overlong),
        "pass_rates": None if pass_rates is None else str(pass_rates),
        "drop_pass_rate": drop_pass_rate,
    }
    summary, table = _core.collect_episodes(
        json.dumps(run),
        as_policy(policy),
        None if user_policy is None else as_policy(user_policy),
    )
    return CollectResult(table=table, **summary)


def load_tasks(path: str | Path, split: str | None = None, split_file: str | Path | None = None) -> list[Any]:
    """Read tasks from a JSONL file or a JSON array file (such as tau2's ``tasks.json``).

    Args:
        path: the task file.
        split: keep only the tasks of this split (needs ``split_file``).
        split_file: a JSON object mapping split names to task ids (such as tau2's ``split_tasks.json``).

    Returns:
        The tasks, ready for ``collect(tasks=...)`` or ``env.reset(options={"task": ...})``.

    """
    return _core.read_tasks(str(path), split, None if split_file is None else str(split_file))


def read_trajectories(path: str | Path) -> _core.ArrowTable:
    """Read sandgym Parquet (a file or a directory of parts), checking it has sandgym's schema."""
    return _core.read_trajectories(str(path))
