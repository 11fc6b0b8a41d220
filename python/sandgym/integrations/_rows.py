"""A dataset row's episode, as the exports write it: ``task`` as JSON text (or an object) and ``seed``."""

from __future__ import annotations

import json
from typing import Any

from sandgym.env import SandgymEnv


def row_task(task: Any) -> Any:
    """The row's task as an object: exports store it as JSON text; None stays None (the env generates one)."""
    return json.loads(task) if isinstance(task, str) else task


def reset_to_row(env: SandgymEnv, task: Any, seed: Any) -> tuple[list, dict[str, Any]]:
    """Reset ``env`` to the row's episode: its task (JSON text or object; None: a generated one) and seed."""
    task = row_task(task)
    return env.reset(seed=int(seed or 0), options={"task": task} if task is not None else None)
