"""Policies for :func:`sandgym.collect`: a model server, a replay, or any Python callable.

An OpenAI-compatible model server, a replay of earlier trajectories, or a callable that maps a batch of
observations to a batch of actions. Every policy goes through one batched interface in the Rust
collector. A name (``"expert"``, ``"random"``) picks a built-in policy; the classes here carry settings::

    from sandgym.policies import OpenAIPolicy
    sandgym.collect("countdown-v0", 16, policy=OpenAIPolicy(base_url="http://127.0.0.1:8000/v1"))

    def my_model(observations):          # list of chat message lists, OpenAI shape
        return ["<tool_call>{...}</tool_call>" for _ in observations]
    sandgym.collect("countdown-v0", 16, policy=my_model)   # wrapped as CallablePolicy(my_model)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: One observation: the conversation so far, system prompt first, as OpenAI chat messages.
Observation = list[dict[str, Any]]
#: One action: model text (parsed by sandgym) or an assistant message dict with ``content`` and/or
#: ``tool_calls`` (OpenAI shape) and optionally ``usage`` (``prompt_tokens``, ``completion_tokens``).
Action = str | dict[str, Any]

#: Parser names: how model text becomes an action.
PARSERS = ("auto", "hermes", "openai", "react", "answer", "python", "text")


@dataclass
class OpenAIPolicy:
    """An OpenAI-compatible chat-completions server (vLLM, SGLang, llama.cpp's server, hosted APIs).

    Requests run from Rust with ``concurrency`` in flight, a timeout and retries with exponential
    backoff; a request that still fails ends only its episode (an error row with ``error_kind="policy"``).
    Token usage and the raw output of each turn land in the ``policy_turns`` column.

    Attributes:
        base_url: the API root up to ``/v1``.
        model: model name; ``None`` asks the server's ``/models`` for its first model.
        api_key_env: environment variable holding the API key (unset sends none).
        temperature: sampling temperature (server default when ``None``).
        top_p: nucleus sampling.
        max_tokens: completion tokens per turn.
        n: completions per request for episodes at the same prompt (a group's first turn).
        seed: base of each request's ``seed`` (mixed with the episode's sampling seed and turn); ``None``
            sends none.
        concurrency: requests in flight (= episodes collected at once).
        timeout_s: timeout of one request.
        retries: retries after transport errors, timeouts, 429 and 5xx.
        backoff_s: first backoff between retries (doubles each time).
        parser: how to read the model's text when the server returns no structured tool calls.
        send_tools: send the env's tool schemas as ``tools``.
        tools_in_prompt: describe the tools in the system prompt (Hermes format) and render tool calls
            and results as text, for servers whose chat template has no tools.
        fold_system: put the system prompt at the head of the first user message, for chat templates
            without a system role (llama.cpp's ``gemma`` format drops system messages).
        extra_body: extra fields for every request body (``{"top_k": 20}``, vLLM's
            ``{"chat_template_kwargs": {...}}``).

    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    n: int = 1
    seed: int | None = 0
    concurrency: int = 8
    timeout_s: float = 120.0
    retries: int = 3
    backoff_s: float = 1.0
    parser: str = "auto"
    send_tools: bool = True
    tools_in_prompt: bool = False
    fold_system: bool = False
    extra_body: dict[str, Any] | None = None

    def _spec(self) -> tuple[str, str, None]:
        return ("openai", json.dumps(asdict(self)), None)


@dataclass
class ReplayPolicy:
    """Plays back the agent's actions of earlier trajectories (a sandgym Parquet file or directory).

    An episode is matched to a recorded one by its conversation (same task, same observations so far);
    a conversation no recording continues ends that episode with a ``policy`` error.
    """

    path: str | Path

    def _spec(self) -> tuple[str, str, None]:
        return ("replay", json.dumps({"path": str(self.path)}), None)


@dataclass
class CallablePolicy:
    """A Python callable as a policy: ``fn(observations) -> actions``, one action per observation.

    ``observations`` is a list of conversations (OpenAI chat message lists). Each action is a ``str``
    (model text, read by ``parser``) or a dict (an assistant message: ``content``, ``tool_calls``, and
    optionally ``usage``). With ``with_tools=True`` the callable is ``fn(observations, tools)`` where
    ``tools[i]`` is the tool schema list of episode ``i``.

    The collector calls it from its Rust threads with up to ``batch_size`` episodes at once, holding the
    GIL only during the call. An exception, or a result of the wrong length or type, ends the episodes
    of that batch with a ``policy`` error row; the run goes on.

    Attributes:
        fn: the callable.
        name: recorded in the ``policy`` column as ``python:{name}`` (default: the callable's name).
        batch_size: episodes in flight, and the largest batch one call receives.
        parser: how text actions are read.
        with_tools: also pass the episodes' tool schemas.

    """

    fn: Callable[..., Sequence[Action]]
    name: str | None = None
    batch_size: int = 8
    parser: str = "auto"
    with_tools: bool = False

    def __post_init__(self) -> None:
        """Check the settings early, with clear errors."""
        if not callable(self.fn):
            raise TypeError(f"CallablePolicy needs a callable, got {type(self.fn).__name__}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.parser not in PARSERS:
            raise ValueError(f"unknown parser {self.parser!r} (available: {', '.join(PARSERS)})")

    def _spec(self) -> tuple[str, str, Callable[..., Sequence[Action]]]:
        name = self.name or getattr(self.fn, "__name__", None) or type(self.fn).__name__
        settings = {
            "name": name,
            "batch_size": self.batch_size,
            "parser": self.parser,
            "with_tools": self.with_tools,
        }
        return ("python", json.dumps(settings), self.fn)


#: What ``collect(policy=...)`` accepts.
PolicyLike = str | OpenAIPolicy | ReplayPolicy | CallablePolicy | Callable[..., Sequence[Action]]


def as_policy(policy: PolicyLike) -> str | OpenAIPolicy | ReplayPolicy | CallablePolicy:
    """Normalize what ``collect(policy=...)`` accepts: names and policy objects pass, callables are wrapped.

    Args:
        policy: a policy name, a policy object of this module, or a callable.

    Returns:
        A name or a policy object the extension understands.

    """
    if isinstance(policy, (str, OpenAIPolicy, ReplayPolicy, CallablePolicy)):
        return policy
    if callable(policy):
        return CallablePolicy(policy)
    raise TypeError(
        f"a policy is a name, an OpenAIPolicy / ReplayPolicy / CallablePolicy, or a callable; "
        f"got {type(policy).__name__}"
    )


def __getattr__(name: str) -> Any:
    """``Delethink`` lives in :mod:`sandgym.delethink` (it builds on :class:`CallablePolicy`); found lazily here."""
    if name == "Delethink":
        from sandgym.delethink import Delethink

        return Delethink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PARSERS",
    "Action",
    "CallablePolicy",
    "Delethink",  # noqa: F822 - provided by the module __getattr__ above
    "Observation",
    "OpenAIPolicy",
    "PolicyLike",
    "ReplayPolicy",
    "as_policy",
]
