"""Trainer datasets from sandgym trajectories (TRL, verl, SkyRL, Early Experience), and advantages.

The same engine as ``sandgym export``: the Rust core reads the trajectories, recomputes rewards and
advantages when asked, and writes Parquet (JSON-valued columns as Parquet JSON, which Hugging Face
``datasets`` >= 4.7 decodes to objects) or JSONL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from sandgym import _core

ExportFormat = Literal[
    "trl-sft",
    "trl-grpo",
    "trl-dpo",
    "verl-rl",
    "verl-sft",
    "skyrl",
    "early-expert",
    "trl-tokens",
    "verl-tokens",
    "trl-chunks",
    "verl-chunks",
]
"""The layouts :func:`export` writes."""

FORMATS: tuple[str, ...] = get_args(ExportFormat)
"""Every export layout, in documentation order."""

ESTIMATORS: tuple[str, ...] = ("grpo", "dr-grpo", "batch")
"""Advantage estimators: GRPO (group mean and std), Dr. GRPO (group mean only), ScaleRL (batch std)."""

REWARD_PRESETS: tuple[str, ...] = ("env", "outcome", "demystify-paper", "demystify-code")
"""Reward presets the advantages can be computed from."""


@dataclass
class ExportResult:
    """What an export wrote and what its filters dropped."""

    path: str
    rows_in: int
    rows_out: int
    dropped_errors: int
    dropped_unsuccessful: int
    dropped_zero_variance: int
    dropped_pass_rate: int
    groups_without_pair: int
    dropped_without_tokens: int = 0
    """Token layouts: episodes left out because their turns carry no token sequence."""
    first_token_gap: str | None = None
    """Why the first of them has none (no ids from the server, or a re-tokenized conversation)."""


def export(
    trajectories: str | Path,
    to: ExportFormat,
    out: str | Path,
    *,
    group_by: Literal["group", "task"] = "group",
    advantage: str | None = None,
    reward: str = "env",
    overlong: tuple[int, int, float] | None = None,
    success_only: bool = False,
    include_errors: bool = False,
    drop_zero_variance: bool = False,
    pass_rates: str | Path | None = None,
    drop_pass_rate: float = 0.9,
    split: str = "train",
    data_source_prefix: str = "sandgym/",
    env_class: str = "sandgym",
) -> ExportResult:
    """Write a trainer dataset from sandgym trajectories.

    Args:
        trajectories: a sandgym Parquet file or a directory of part files.
        to: the layout: ``"trl-sft"`` / ``"verl-sft"`` (``messages`` + ``tools``, one row per episode),
            ``"trl-grpo"`` (``prompt`` + reward columns, one row per prompt), ``"trl-dpo"`` (``prompt``,
            ``chosen``, ``rejected``: the best and worst rollout of each group), ``"verl-rl"``
            (``data_source``, ``prompt``, ``ability``, ``reward_model``, ``extra_info``), ``"skyrl"``
            (``env_class``, ``reward_spec``, ...), ``"early-expert"`` (one row per agent step), or the token
            layouts, one row per episode whose turns recorded token ids: ``"trl-tokens"`` (``prompt_ids``,
            ``completion_ids``, ``logprobs``, ``env_mask``, ``reward``: TRL's ``rollout_func`` fields) and
            ``"verl-tokens"`` (``prompt_ids``, ``response_ids``, ``response_mask``, ``response_logprobs``,
            ``reward_score``: verl's agent-loop output); and one row per chunk of a chunked (Delethink) turn,
            ``"trl-chunks"`` / ``"verl-chunks"``, in the same names plus ``traj_uid``, ``turn_idx``,
            ``chunk_idx``, ``trace_length`` and ``trace_truncated``.
        out: the output file, ``.parquet`` or ``.jsonl``.
        group_by: ``"group"`` (the ``group_id`` column) or ``"task"`` (env and task id) makes a prompt.
        advantage: recompute advantages with this estimator (``"grpo"``, ``"dr-grpo"``, ``"batch"``);
            default: keep the stored ones (recomputed with ``"grpo"`` when ``reward`` is not ``"env"``).
        reward: the reward preset: ``"env"``, ``"outcome"``, ``"demystify-paper"``, ``"demystify-code"``.
        overlong: overlong shaping ``(max_len, buffer, penalty)`` on the characters the agent wrote.
        success_only: keep only successful episodes (SFT and early-expert layouts).
        include_errors: keep episodes that ended with an error (dropped by default).
        drop_zero_variance: drop groups whose rewards are all equal.
        pass_rates: a pass-rate history file; prompts at or above ``drop_pass_rate`` are dropped.
        drop_pass_rate: the pass rate at or above which a prompt is dropped.
        split: ``extra_info.split`` (verl, SkyRL).
        data_source_prefix: ``data_source`` is this prefix plus the env name (verl, SkyRL).
        env_class: SkyRL's ``env_class``.

    Returns:
        An :class:`ExportResult`.

    """
    summary = _core.export_trajectories(
        str(trajectories),
        to,
        str(out),
        group_by,
        advantage,
        reward,
        overlong,
        success_only,
        include_errors,
        drop_zero_variance,
        None if pass_rates is None else str(pass_rates),
        drop_pass_rate,
        split,
        data_source_prefix,
        env_class,
    )
    return ExportResult(**summary)


def compute_advantages(
    trajectories: str | Path,
    estimator: str = "grpo",
    *,
    reward: str = "env",
    overlong: tuple[int, int, float] | None = None,
    group_by: Literal["group", "task"] = "group",
    drop_zero_variance: bool = False,
) -> _core.ArrowTable:
    """Read trajectories and recompute their ``shaped_reward`` and ``advantage`` columns.

    Args:
        trajectories: a sandgym Parquet file or a directory of part files.
        estimator: ``"grpo"`` ((r - mean) / (std + 1e-6) in the group, sample std), ``"dr-grpo"``
            (r - mean) or ``"batch"`` (group mean, std over all rows; ScaleRL).
        reward: the reward preset the advantages are computed from.
        overlong: overlong shaping ``(max_len, buffer, penalty)`` on the characters the agent wrote.
        group_by: ``"group"`` (the ``group_id`` column; rows without one get a null advantage) or
            ``"task"`` (all rollouts of the same env and task id, across runs).
        drop_zero_variance: leave out groups whose rewards are all equal.

    Returns:
        The rows as an Arrow table (``pyarrow.table(result)`` imports it).

    """
    return _core.compute_advantages(str(trajectories), estimator, reward, overlong, group_by, drop_zero_variance)
