"""Delethink: Markovian-thinking rollouts (Aghajohari et al., arXiv:2510.06557), over token ids.

The model reasons in chunks of at most ``C`` tokens. Chunk 1 sees the chat-templated query ``q`` and may generate
``C`` tokens; chunk ``l >= 2`` sees only ``q`` plus a carry-over of ``m`` tokens from before and may generate
``C - m`` more. Thinking length then grows with linear compute and constant memory: every chunk's context stays
within ``|q| + C`` (the head below included), and a trace generates at most ``C + (I - 1)(C - m)`` tokens in ``I``
chunks. A trace ends when a chunk ends before its budget (the model's end-of-turn or EOS token) or after ``I``
chunks (the iteration cap truncated it).

The carry-over (:func:`carry_over`), in the two forms the paper's code has:

- ``"fixed"``: the first ``keep_head`` tokens of chunk 1 (the "planning tokens" the query absorbs) and the last
  ``m`` tokens of the previous chunk: ``x_l = q ⊕ y_1[:keep_head] ⊕ y_{l-1}[-m:]``;
- ``"progressive"``: ``m`` tokens in all, the head and tail of the previous carry-over followed by the new chunk:
  ``c_l = trim(c_{l-1} ⊕ y_{l-1})`` keeping the first ``keep_head`` and last ``m - keep_head`` tokens,
  ``x_l = q ⊕ c_l``.

Everything is token ids: the generated ids are carried as they are, never decoded and re-tokenized. The env gets
the decoded concatenation of all chunks as the turn's action, so an answer or a tool call that spans a boundary
still parses. :func:`delethink` runs one trace with any generator ``(prompt ids, max new tokens) -> (ids,
log-probabilities)``; :class:`Delethink` is the policy wrapper for :func:`sandgym.collect` (every model turn of any
env becomes one trace), over a :class:`TokenBackend`: a local tokenizer and generator (:class:`LocalBackend`) or an
OpenAI-compatible ``/v1/completions`` server that takes token-id prompts (:class:`CompletionsBackend`: vLLM,
SGLang). :meth:`DelethinkConfig.longcot` is the like-for-like baseline: one chunk of the whole budget.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sandgym.policies import Action, CallablePolicy, Observation

#: A chunk generator: (prompt ids, max new tokens) -> (generated ids, their log-probabilities or None).
ChunkGenerate = Callable[[list[int], int], "tuple[list[int], list[float] | None]"]

CarryMode = Literal["fixed", "progressive"]


@dataclass(frozen=True)
class DelethinkConfig:
    """Chunk size ``C``, carry-over ``m``, iteration cap ``I``, the head the query absorbs, the carry mode.

    Defaults are the paper's 24K run: ``C = 8192``, ``m = C / 2``, ``I = 5``, ``keep_head = 100``.
    """

    chunk: int = 8192
    """``C``: the most tokens chunk 1 generates, and the bound on every chunk's context beyond the query."""
    carry: int = 4096
    """``m``: carry-over tokens (the Markovian state); later chunks generate ``C - m``."""
    iterations: int = 5
    """``I``: chunks per trace at most."""
    keep_head: int = 100
    """Leading tokens of chunk 1 kept in every later prompt."""
    mode: CarryMode = "fixed"
    """``"fixed"`` or ``"progressive"`` carry-over (module docstring)."""

    def __post_init__(self) -> None:
        """Check the knobs: every chunk must have room to generate and the carry-over must fit."""
        if self.chunk < 1 or self.iterations < 1:
            raise ValueError(f"C and I must be at least 1 (C={self.chunk}, I={self.iterations})")
        if self.keep_head < 0:
            raise ValueError(f"keep_head must not be negative (got {self.keep_head})")
        if self.mode not in ("fixed", "progressive"):
            raise ValueError(f"carry mode {self.mode!r}: expected 'fixed' or 'progressive'")
        if self.iterations > 1:
            if not 0 < self.carry < self.chunk:
                raise ValueError(f"m must be in 1..C-1 so later chunks can generate (m={self.carry}, C={self.chunk})")
            if self.keep_head > (self.carry if self.mode == "progressive" else self.chunk):
                limit = "m" if self.mode == "progressive" else "C"
                raise ValueError(f"keep_head ({self.keep_head}) exceeds {limit} in {self.mode} mode")

    @property
    def budget(self) -> int:
        """The most tokens a trace generates: ``C + (I - 1)(C - m)``."""
        return self.chunk + (self.iterations - 1) * (self.chunk - self.carry)

    def chunk_budget(self, index: int) -> int:
        """New tokens chunk ``index`` (0-based) may generate: ``C`` for the first, ``C - m`` after."""
        return self.chunk if index == 0 else self.chunk - self.carry

    @classmethod
    def longcot(cls, budget: int) -> DelethinkConfig:
        """The LongCoT baseline: one chunk of ``budget`` tokens (no carry-over), for like-for-like comparisons."""
        return cls(chunk=budget, carry=0, iterations=1, keep_head=0)

    @classmethod
    def parse(cls, spec: str) -> DelethinkConfig:
        """Read ``"C=8192,m=4096,I=5,keep_head=100,carry=progressive"`` (any subset; ``m`` defaults to ``C / 2``).

        Raises:
            ValueError: an unknown key, a value that is not an integer, or knobs that do not fit.

        """
        names = {"C": "chunk", "m": "carry", "I": "iterations", "keep_head": "keep_head"}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            key = key.strip()
            if key == "carry":
                values["mode"] = value.strip()
            elif key in names:
                try:
                    values[names[key]] = int(value)
                except ValueError:
                    raise ValueError(f"delethink {key}={value!r}: expected an integer") from None
            else:
                raise ValueError(f"delethink knob {key!r}: expected C, m, I, keep_head or carry")
        if "chunk" in values and "carry" not in values:
            values["carry"] = values["chunk"] // 2
        return cls(**values)


@dataclass
class Chunk:
    """One chunk: the prompt it saw and what it generated."""

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float] | None


@dataclass
class DelethinkTrace:
    """One reasoning trace: the query and its chunks."""

    query_ids: list[int]
    chunks: list[Chunk] = field(default_factory=list)
    finished: bool = False
    """Ended by the model (a chunk stopped before its budget), not by the iteration cap."""

    @property
    def truncated(self) -> bool:
        """The iteration cap ended the trace."""
        return not self.finished

    @property
    def trace_length(self) -> int:
        """Generated tokens over all chunks, ``Σ |y_l|`` (the paper's loss normalizer)."""
        return sum(len(c.response_ids) for c in self.chunks)

    @property
    def response_ids(self) -> list[int]:
        """All chunks' generated ids, in order: what the env's action is decoded from."""
        return [i for c in self.chunks for i in c.response_ids]

    def attended_tokens(self) -> int:
        """Query-key pairs attended while generating the trace (the benchmark's cost measure).

        Token ``t`` of a chunk attends to the chunk's prompt and the ``t`` tokens before it; the KV cache is cleared
        at every boundary.
        """
        return sum(
            len(c.prompt_ids) * len(c.response_ids) + len(c.response_ids) * (len(c.response_ids) + 1) // 2
            for c in self.chunks
        )


def carry_over(responses: Sequence[Sequence[int]], config: DelethinkConfig) -> list[int]:
    """The tokens carried into the next chunk's prompt after ``responses`` (the chunks so far, in order).

    Args:
        responses: each chunk's generated ids; at least one.
        config: the knobs (``keep_head``, ``m``, the mode).

    Returns:
        ``"fixed"``: ``y_1[:keep_head] ⊕ y_last[-m:]``; ``"progressive"``: ``trim(c ⊕ y)`` folded over the chunks,
        keeping the first ``keep_head`` and the last ``m - keep_head`` tokens once over ``m``.

    """
    if not responses:
        raise ValueError("carry_over needs at least one chunk")
    if config.mode == "fixed":
        return list(responses[0][: config.keep_head]) + list(responses[-1][-config.carry :])
    carried: list[int] = []
    tail = config.carry - config.keep_head
    for response in responses:
        joined = carried + list(response)
        carried = joined if len(joined) <= config.carry else joined[: config.keep_head] + joined[len(joined) - tail :]
    return carried


def delethink(
    generate: ChunkGenerate, query_ids: Sequence[int], config: DelethinkConfig, stop_ids: Collection[int] = ()
) -> DelethinkTrace:
    """Run one trace: chunk 1 from the query, then each chunk from the query and the carry-over.

    Args:
        generate: (prompt ids, max new tokens) -> (generated ids, log-probabilities or None); it should stop at the
            model's end-of-turn token.
        query_ids: the chat-templated query.
        config: the knobs.
        stop_ids: tokens that end the trace when a chunk ends with one (a chunk shorter than its budget ends it
            too).

    Returns:
        The trace.

    Raises:
        ValueError: the generator returned more tokens than the chunk's budget, or log-probabilities that do not
            match its ids.

    """
    trace = DelethinkTrace(query_ids=list(query_ids))
    responses: list[list[int]] = []
    for index in range(config.iterations):
        prompt = trace.query_ids + (carry_over(responses, config) if responses else [])
        budget = config.chunk_budget(index)
        ids, logprobs = generate(list(prompt), budget)
        ids = [int(i) for i in ids]
        if len(ids) > budget:
            raise ValueError(f"chunk {index + 1}: the generator returned {len(ids)} tokens, over its budget {budget}")
        if logprobs is not None and len(logprobs) != len(ids):
            raise ValueError(f"chunk {index + 1}: {len(ids)} ids but {len(logprobs)} log-probabilities")
        trace.chunks.append(Chunk(prompt, ids, None if logprobs is None else [float(x) for x in logprobs]))
        responses.append(ids)
        if len(ids) < budget or (ids and ids[-1] in stop_ids):
            trace.finished = True
            break
    return trace


class TokenBackend(Protocol):
    """What :class:`Delethink` needs of a model: a chat template over ids, a generator, a decoder."""

    stop_ids: Collection[int]
    """Tokens that end a trace (end-of-turn, EOS)."""

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The conversation's chat-templated ids, with the generation prompt: the query."""
        ...

    def generate(self, prompt_ids: list[int], max_new_tokens: int) -> tuple[list[int], list[float] | None]:
        """Up to ``max_new_tokens`` ids after ``prompt_ids``, with their log-probabilities or None."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of generated ids (control tokens dropped)."""
        ...


@dataclass
class LocalBackend:
    """A Hugging Face-style tokenizer (``apply_chat_template`` / ``encode`` / ``decode``) and a local generator.

    Attributes:
        tokenizer: renders the chat template and decodes.
        generate: (prompt ids, max new tokens) -> (ids, log-probabilities or None).
        stop_ids: end-of-turn / EOS ids (default: the tokenizer's ``eos_token_id`` when it has one).

    """

    tokenizer: Any
    generate: ChunkGenerate  # type: ignore[assignment]
    stop_ids: Collection[int] = ()

    def __post_init__(self) -> None:
        """Default the stop ids to the tokenizer's EOS token."""
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if not self.stop_ids and isinstance(eos, int):
            self.stop_ids = (eos,)

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The query: the chat template's rendering with the generation prompt, as ids."""
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools or None, add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        """The generated text, control tokens dropped."""
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


@dataclass
class CompletionsBackend:
    """An OpenAI-compatible ``/v1/completions`` server that takes the prompt as token ids (vLLM, SGLang).

    Requests ask for ``return_token_ids`` and ``logprobs``; the generated ids come back as the server sampled them.
    The query is rendered with a local tokenizer (the model's own, e.g. ``AutoTokenizer.from_pretrained``).

    Attributes:
        base_url: the API root up to ``/v1``.
        model: the served model's name.
        tokenizer: renders the chat template and decodes (``LocalBackend``'s tokenizer).
        temperature: sampling temperature.
        timeout_s: timeout of one request.
        stop_ids: end-of-turn / EOS ids (default: the tokenizer's ``eos_token_id``).

    """

    base_url: str
    model: str
    tokenizer: Any
    temperature: float = 1.0
    timeout_s: float = 600.0
    stop_ids: Collection[int] = ()

    def __post_init__(self) -> None:
        """Default the stop ids to the tokenizer's EOS token."""
        self._local = LocalBackend(self.tokenizer, self.generate, self.stop_ids)
        self.stop_ids = self._local.stop_ids

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The query, rendered locally."""
        return self._local.render(messages, tools)

    def decode(self, ids: list[int]) -> str:
        """The generated text, decoded locally."""
        return self._local.decode(ids)

    def generate(self, prompt_ids: list[int], max_new_tokens: int) -> tuple[list[int], list[float] | None]:
        """One completion request with the prompt as token ids.

        Raises:
            RuntimeError: the request failed, or the reply has no ``token_ids`` (the server does not support
                ``return_token_ids``, e.g. vLLM before 0.10.2).

        """
        body = {
            "model": self.model,
            "prompt": prompt_ids,
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
            "logprobs": 0,
            "return_token_ids": True,
        }
        url = f"{self.base_url.rstrip('/')}/completions"
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{url}: HTTP {e.code}: {e.read()[:300]!r}") from e
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as e:
            raise RuntimeError(f"{url}: {e}") from e
        choice = (reply.get("choices") or [{}])[0]
        ids = choice.get("token_ids")
        if not isinstance(ids, list):
            raise RuntimeError(f"{url}: the reply has no token_ids (does the server support return_token_ids?)")
        logprobs = (choice.get("logprobs") or {}).get("token_logprobs")
        return [int(i) for i in ids], None if logprobs is None else [float(x) for x in logprobs]


class Delethink(CallablePolicy):
    """The Delethink policy wrapper for :func:`sandgym.collect`: every model turn is one Markovian trace.

    Each turn renders the conversation with the backend's chat template (the query), runs :func:`delethink`, and
    acts with the decoded concatenation of all chunks (read by ``parser``, like any model text). The chunks go
    into the turn's ``policy_turns[].chunks`` (each chunk's prompt ids, response ids and log-probabilities), from
    which ``sandgym export --to verl-chunks`` / ``trl-chunks`` write one training row per chunk; the turn's
    ``usage`` reports the query's and the trace's token counts. The traces are also kept on :attr:`traces`, in the
    order they finished.

    Args:
        inner: the :class:`TokenBackend`.
        C: chunk size; m: carry-over (default ``C / 2``); iterations: the cap ``I``; keep_head: the head the query
            absorbs; carry: ``"fixed"`` or ``"progressive"``; config: all of them at once instead.
        parser: how the decoded text is read.
        batch_size: turns in flight (each runs its trace to the end).

    """

    def __init__(
        self,
        inner: TokenBackend,
        C: int = 8192,  # noqa: N803 - the paper's names
        m: int | None = None,
        iterations: int = 5,
        keep_head: int = 100,
        carry: CarryMode = "fixed",
        *,
        config: DelethinkConfig | None = None,
        parser: str = "auto",
        batch_size: int = 1,
    ) -> None:
        """Wrap ``inner`` (see the class docstring)."""
        self.inner = inner
        self.config = config or DelethinkConfig(
            chunk=C, carry=C // 2 if m is None else m, iterations=iterations, keep_head=keep_head, mode=carry
        )
        self.traces: list[DelethinkTrace] = []
        self._lock = threading.Lock()
        super().__init__(fn=self.act, name="delethink", batch_size=batch_size, parser=parser, with_tools=True)

    def trace(self, messages: Observation, tools: list[dict] | None = None) -> DelethinkTrace:
        """One trace for the conversation ``messages`` (the model's next turn)."""
        query = self.inner.render(messages, tools or [])
        return delethink(self.inner.generate, query, self.config, self.inner.stop_ids)

    def act(self, observations: list[Observation], tools: list[list[dict]]) -> list[Action]:
        """One action per conversation: the decoded trace, with its token counts."""
        actions: list[Action] = []
        for messages, schema in zip(observations, tools, strict=True):
            trace = self.trace(messages, schema)
            with self._lock:
                self.traces.append(trace)
            usage = {"prompt_tokens": len(trace.query_ids), "completion_tokens": trace.trace_length}
            chunks = [
                {"prompt_ids": c.prompt_ids, "response_ids": c.response_ids, "response_logprobs": c.logprobs or []}
                for c in trace.chunks
            ]
            actions.append({"text": self.inner.decode(trace.response_ids), "usage": usage, "chunks": chunks})
        return actions


__all__ = [
    "CarryMode",
    "Chunk",
    "ChunkGenerate",
    "CompletionsBackend",
    "Delethink",
    "DelethinkConfig",
    "DelethinkTrace",
    "LocalBackend",
    "TokenBackend",
    "carry_over",
    "delethink",
]
