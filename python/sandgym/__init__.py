"""sandgym: sandboxed, forkable WebAssembly environments and trajectory collection for LLM agents.

Quick start::

    import sandgym
    env = sandgym.make("countdown-v0")
    obs, info = env.reset(seed=0)
    text = '<tool_call>{"name": "calc", "arguments": {"expression": "1+2"}}</tool_call>'
    obs, reward, terminated, truncated, info = env.step(text)
    result = sandgym.collect("countdown-v0", episodes=100, policy="expert")

Importing sandgym registers every bundled env with Gymnasium as ``sandgym/<id>``
(``gymnasium.make("sandgym/countdown-v0")``).
"""

from __future__ import annotations

from sandgym import errors, policies
from sandgym._core import ABI_VERSION, ArrowTable, Snapshot, __version__
from sandgym._core import parse_action_text as parse_action
from sandgym.collect import CollectResult, collect, list_envs, load_tasks, read_trajectories
from sandgym.early import EarlyExperienceResult, ReflectionSftResult, build_reflection_sft, early_experience
from sandgym.env import SandgymEnv, make
from sandgym.errors import SandgymError
from sandgym.export import ExportResult, compute_advantages, export
from sandgym.policies import CallablePolicy, OpenAIPolicy, ReplayPolicy
from sandgym.registration import register_envs
from sandgym.vector import VecEnv

__all__ = [
    "ABI_VERSION",
    "ArrowTable",
    "CallablePolicy",
    "CollectResult",
    "EarlyExperienceResult",
    "ExportResult",
    "OpenAIPolicy",
    "ReflectionSftResult",
    "ReplayPolicy",
    "SandgymEnv",
    "SandgymError",
    "Snapshot",
    "VecEnv",
    "__version__",
    "build_reflection_sft",
    "collect",
    "compute_advantages",
    "early_experience",
    "errors",
    "export",
    "list_envs",
    "load_tasks",
    "make",
    "parse_action",
    "policies",
    "read_trajectories",
    "register_envs",
]

register_envs()
