"""Early experience (arXiv 2510.08558): branch expert states with alternative actions on forks of the env.

The same engine as ``sandgym early-experience`` / ``sandgym reflection-sft``; see ``docs/early-experience.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandgym import _core


@dataclass
class EarlyExperienceResult:
    """Figures of a branching run and the files it wrote (``files``: branches, datasets, prompts)."""

    run_id: str
    sampler: str
    episodes: int
    skipped_episodes: int
    states: int
    branches: int
    alternatives: int
    short_states: int
    branch_errors: int
    observation_errors: int
    env_steps: int
    wall_time_s: float
    branches_per_second: float
    expert_rows: int
    iwm_rows: int
    prompt_rows: int
    files: list[str] = field(default_factory=list)


@dataclass
class ReflectionSftResult:
    """What :func:`build_reflection_sft` kept, dropped (with reasons, in the ``_dropped`` file) and missed."""

    kept: int
    dropped: int
    missing: int
    files: list[str] = field(default_factory=list)


def early_experience(
    out_dir: str | Path,
    env: str | None = None,
    *,
    trajectories: str | Path | None = None,
    episodes: int = 10,
    seed: int = 0,
    tasks: Sequence[Any] | None = None,
    sampler: str = "uniform",
    k: int | None = None,
    exclude_expert_tool: bool = False,
    policy: str = "random",
    temperatures: Sequence[float] = (1.0,),
    method: str = "fork",
    verify: str = "state",
    reflect_k: int = 3,
    iwm_expert: bool = True,
    max_steps: int = 64,
    config: dict[str, Any] | None = None,
    fuel: int | None = None,
    memory_mb: int | None = None,
    deadline_s: float | None = None,
    threads: int | None = None,
    run_id: str | None = None,
) -> EarlyExperienceResult:
    """Branch expert states with K alternative actions each and write the early-experience files.

    In every expert state the env is forked; the expert action runs once and each alternative on its own
    fork, whose state fingerprint is checked against the expert state's first (a mismatch raises).

    Args:
        out_dir: output directory; must not already hold early-experience output.
        env: env id or ``.wasm`` path. With ``trajectories``, keeps only that env's rows.
        trajectories: a sandgym Parquet file or directory of expert trajectories (e.g. collected with an LLM),
            replayed step by step and checked against the recording; ``None`` plays the env's own expert.
        episodes: expert episodes to play (without ``trajectories``); episode ``i`` uses seed ``seed + i``.
        seed: seed of the first expert episode.
        tasks: tasks for the expert episodes, played in turn (the env's task format).
        sampler: ``"uniform"`` (admissible actions, without replacement), ``"tool-schema"``, ``"policy"`` or
            ``"exhaustive"``.
        k: alternatives per state (default 8 uniform, 5 tool-schema, 3 policy, every action exhaustive).
        exclude_expert_tool: tool-schema sampler: never sample the expert's tool.
        policy: policy sampler: the proposing policy (``"random"``, ``"expert"``).
        temperatures: policy sampler: one proposing policy per temperature (passed to the policy factory).
        method: ``"fork"`` or ``"replay"`` (reset and replay the prefix: the paper authors' baseline).
        verify: what each fork's fingerprint covers: ``"state"`` (the env's state digest), ``"full"`` (its expert
            and admissible actions) or ``"expert"`` (its expert action).
        reflect_k: alternatives shown per self-reflection prompt.
        iwm_expert: include the expert transition in the world-model file.
        max_steps: expert states per episode at most (live expert).
        config: env configuration knobs.
        fuel: fuel units per guest call.
        memory_mb: guest memory cap in MiB.
        deadline_s: wall-clock limit per guest call in seconds.
        threads: worker threads (default one per core).
        run_id: identifies the run in every branch row (default: generated).

    Returns:
        An :class:`EarlyExperienceResult`.

    """
    run = {
        "out_dir": str(out_dir),
        "env": env,
        "trajectories": None if trajectories is None else str(trajectories),
        "episodes": episodes,
        "seed": seed,
        "tasks": None if tasks is None else list(tasks),
        "sampler": sampler,
        "k": k,
        "exclude_expert_tool": exclude_expert_tool,
        "policy": policy,
        "temperatures": [float(t) for t in temperatures],
        "method": method,
        "verify": verify,
        "reflect_k": reflect_k,
        "iwm_expert": iwm_expert,
        "max_steps": max_steps,
        "config": config or None,
        "fuel": fuel,
        "memory_mb": memory_mb,
        "deadline_s": deadline_s,
        "threads": threads,
        "run_id": run_id,
    }
    summary = _core.early_experience(json.dumps(run))
    return EarlyExperienceResult(**summary)


def _read_reflections(reflections: str | Path | Mapping[str, str]) -> list[tuple[str, str]]:
    if isinstance(reflections, Mapping):
        return [(str(key), str(value)) for key, value in reflections.items()]
    return _core.read_reflections(str(reflections))


def build_reflection_sft(
    prompts: str | Path,
    reflections: str | Path | Mapping[str, str],
    out_dir: str | Path,
    *,
    label_leak: bool = False,
    outcome_leak: bool = False,
    duplicated: bool = False,
    concluded_action: bool = False,
) -> ReflectionSftResult:
    """Build ``reflection_sft.{jsonl,parquet}`` from reflection prompts and the reflections a model wrote.

    Each row is: system = the agent prompt, user = the state (serialized as in the other files), assistant = the
    reflection, a blank line, then the expert action. Dropped reflections go to ``reflection_sft_dropped.jsonl``.

    Args:
        prompts: ``reflection_prompts.jsonl`` (or the de-leaked file) written by :func:`early_experience`.
        reflections: prompt id -> reflection text, as a mapping, a JSONL file of ``{"id", "reflection"}``
            objects or a Parquet file with ``id`` and ``reflection`` columns.
        out_dir: output directory.
        label_leak: drop reflections using label words (expert, chosen, best, ...) or numbered labels.
        outcome_leak: drop reflections narrating outcomes as already seen.
        duplicated: drop reflections whose opening reappears in their second half.
        concluded_action: drop reflections whose last-named action is an alternative.

    Returns:
        A :class:`ReflectionSftResult`.

    """
    summary = _core.build_reflection_sft(
        str(prompts),
        _read_reflections(reflections),
        str(out_dir),
        label_leak,
        outcome_leak,
        duplicated,
        concluded_action,
    )
    return ReflectionSftResult(**summary)
