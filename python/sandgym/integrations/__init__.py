"""Adapters that plug sandgym envs into training frameworks.

Each adapter lives in its own module and imports its framework only when that module is imported, so
``import sandgym`` never needs any of them:

- :mod:`sandgym.integrations.skyrl`: a SkyRL-Gym environment (``SandgymSkyRLEnv``) for the datasets
  ``sandgym export --to skyrl`` writes, and ``register()`` to add it to SkyRL-Gym's registry
  (needs ``pip install skyrl-gym``);
- :mod:`sandgym.integrations.trl`: ``environment_factory(env_id)``, a class for TRL's environments mode
  (``GRPOTrainer(environment_factory=...)``), tools from the env's schemas, reward from its verifier;
- :mod:`sandgym.integrations.verl`: the ``sandgym_agent`` agent loop (needs ``pip install verl``);
- :mod:`sandgym.integrations.verifiers`: a verifiers 0.4 Taskset and Env (plugin id ``sandgym-verifiers``
  for ``vf-eval``; needs ``pip install sandgym[verifiers]``);
- :mod:`sandgym.integrations.openenv`: ``sandgym serve``, an OpenEnv 0.10-compatible env server (HTTP and
  WebSocket, plus fork / snapshot / restore; needs ``pip install sandgym[serve]``).

Token-level rollouts for a trainer's own loop are :mod:`sandgym.tokens`.
"""
