"""The verifiers plugin id ``sandgym-verifiers``: ``vf-eval sandgym-verifiers --env.taskset.env countdown-v0``.

verifiers 0.4 resolves a taskset id by importing the top-level module it names (``-`` read as ``_``) and
taking the Taskset, Env and Harness subclasses its ``__all__`` exports, one each. This module only re-exports
them from :mod:`sandgym.integrations.verifiers`, which owns the adapter.
"""

from sandgym.integrations.verifiers import SandgymHarness, SandgymTaskset, SandgymVerifiersEnv

__all__ = ["SandgymHarness", "SandgymTaskset", "SandgymVerifiersEnv"]
