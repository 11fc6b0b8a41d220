"""Registers every bundled env with Gymnasium, so that Gymnasium's own ``make`` and ``make_vec`` build them.

``import sandgym`` runs :func:`register_envs`: ``gymnasium.make("sandgym/countdown-v0")`` then works, and so does
``gymnasium.make("sandgym:sandgym/countdown-v0")`` without importing sandgym first (Gymnasium imports the module
named before the colon). Gymnasium ≥ 1.0 has no plugin entry points, hence registration at import.
``gymnasium.make_vec("sandgym/countdown-v0", num_envs=8)`` builds a :class:`sandgym.VecEnv`, which steps all
slots in Rust, instead of a Python loop over single envs.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from sandgym import _core

#: The Gymnasium namespace of sandgym's envs.
NAMESPACE = "sandgym"
#: Keyword arguments of :class:`sandgym.VecEnv` that are not env config knobs.
_VEC_OPTIONS = ("fuel", "memory_mb", "deadline_s", "render_mode", "autoreset_mode")


def _make_vec(num_envs: int = 1, *, env_id: str, **kwargs: Any) -> gymnasium.vector.VectorEnv:
    """``make_vec``'s entry point: a :class:`sandgym.VecEnv` of ``num_envs`` slots."""
    from sandgym.vector import VecEnv

    limits = {key: kwargs.pop(key) for key in _VEC_OPTIONS if key in kwargs}
    return VecEnv(env_id, num_envs, kwargs or None, **limits)


def register_envs() -> list[str]:
    """Register each bundled env as ``sandgym/<id>`` (skipping ids already registered); returns the ids."""
    ids = []
    for env_id in _core.bundled_env_ids():  # no env is compiled at import
        gym_id = f"{NAMESPACE}/{env_id}"
        if gym_id not in gymnasium.registry:
            gymnasium.register(
                id=gym_id,
                entry_point="sandgym.env:make",
                vector_entry_point="sandgym.registration:_make_vec",
                kwargs={"env_id": env_id},
            )
        ids.append(gym_id)
    return ids
