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
SGLang, llama.cpp's server). The chat template and vocabulary come from a :class:`ChatTokenizer`: a Hugging Face
``tokenizer.json`` (:func:`load_tokenizer`, the Rust ``tokenizers`` crate underneath) or the server's own
``/tokenize`` and ``/detokenize`` (:class:`ServerTokenizer`). :func:`cli_policy` is ``sandgym collect --delethink``.
:meth:`DelethinkConfig.longcot` is the like-for-like baseline: one chunk of the whole budget.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

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


@runtime_checkable
class ChatTokenizer(Protocol):
    """A model's chat template and vocabulary, over ids: the tokenizer half of a :class:`TokenBackend`."""

    stop_ids: Collection[int]
    """End-of-turn / EOS ids."""

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The conversation's chat-templated ids, with the generation prompt."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of generated ids, control tokens dropped."""
        ...


@dataclass
class HFChatTokenizer:
    """A Hugging Face-style tokenizer (``apply_chat_template`` / ``encode`` / ``decode``) as a :class:`ChatTokenizer`.

    Attributes:
        tokenizer: e.g. ``AutoTokenizer.from_pretrained(...)`` (a fast tokenizer is the Rust ``tokenizers`` crate).
        stop_ids: end-of-turn / EOS ids (default: the tokenizer's ``eos_token_id`` when it has one).

    """

    tokenizer: Any
    stop_ids: Collection[int] = ()

    def __post_init__(self) -> None:
        """Default the stop ids to the tokenizer's EOS token."""
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if not self.stop_ids and isinstance(eos, int):
            self.stop_ids = (eos,)

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The chat template's rendering with the generation prompt, as ids."""
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools or None, add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        """The generated text, control tokens dropped."""
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


def load_tokenizer(name_or_path: str) -> HFChatTokenizer:
    """A Hugging Face tokenizer as a :class:`ChatTokenizer`: a ``tokenizer.json`` file, its folder, or a hub id.

    A bare ``tokenizer.json`` has no chat template; it is read from ``tokenizer_config.json`` or
    ``chat_template.jinja`` beside it, as ``transformers`` does for a folder.

    Raises:
        ValueError: the tokenizer has no chat template.

    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if os.path.isfile(name_or_path):
        folder = os.path.dirname(os.path.abspath(name_or_path))
        if os.path.exists(os.path.join(folder, "tokenizer_config.json")):
            tokenizer = AutoTokenizer.from_pretrained(folder)
        else:
            tokenizer = PreTrainedTokenizerFast(tokenizer_file=name_or_path)
            template = os.path.join(folder, "chat_template.jinja")
            if os.path.exists(template):
                with open(template, encoding="utf-8") as f:
                    tokenizer.chat_template = f.read()
    else:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"tokenizer {name_or_path}: no chat template (tokenizer_config.json or chat_template.jinja)")
    return HFChatTokenizer(tokenizer)


def _request_json(url: str, body: dict | None, timeout_s: float, api_key: str | None = None) -> Any:
    """POST ``body`` as JSON (GET when it is None) and read the JSON reply.

    Raises:
        RuntimeError: the server answered with an error status, did not answer, or answered with something that
            is not JSON; the message names the URL and the server's own words.
        _NotFound: HTTP 404 (the caller may try another endpoint).

    """
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        detail = e.read()[:300]
        if e.code == 404:
            raise _NotFound(f"{url}: HTTP 404: {detail!r}") from e
        raise RuntimeError(f"{url}: HTTP {e.code}: {detail!r}") from e
    except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as e:
        raise RuntimeError(f"{url}: {getattr(e, 'reason', e)}") from e


class _NotFound(RuntimeError):
    """An endpoint the server does not have."""


@dataclass
class ServerTokenizer:
    """The serving engine's own chat template and vocabulary, through its ``/tokenize`` and ``/detokenize``.

    Two dialects, found on first use: llama.cpp's server (``/apply-template`` renders the conversation, ``/tokenize``
    reads the text with its special tokens) and vLLM's (``/tokenize`` renders ``messages`` to ids itself). Either
    way the ids are the server's, so the query is exactly what the model would see through its chat endpoint.

    Attributes:
        base_url: the API root up to ``/v1`` (the tokenizer endpoints are at the server's root).
        model: the served model's name (vLLM routes by it).
        timeout_s: timeout of one request.
        api_key: sent as a bearer token when set.
        stop_ids: end-of-turn / EOS ids; default: llama.cpp's ``/props`` EOS token (vLLM reports none, and stops at
            its own EOS anyway).

    """

    base_url: str
    model: str = ""
    timeout_s: float = 60.0
    api_key: str | None = None
    stop_ids: Collection[int] = ()
    _dialect: str | None = field(default=None, init=False, repr=False)

    @property
    def _root(self) -> str:
        root = self.base_url.rstrip("/")
        return root[: -len("/v1")] if root.endswith("/v1") else root

    def _post(self, path: str, body: dict) -> Any:
        return _request_json(f"{self._root}{path}", body, self.timeout_s, self.api_key)

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The conversation's chat-templated ids with the generation prompt, as the server renders them.

        Raises:
            RuntimeError: the server has neither dialect's endpoints, or its reply has no ids.

        """
        # llama.cpp rejects a null where it expects a string (`"name": null`): send only the fields that are set.
        conversation: dict[str, Any] = {
            "messages": [{k: v for k, v in m.items() if v is not None} for m in messages],
            "add_generation_prompt": True,
        }
        if tools:
            conversation["tools"] = tools
        if self._dialect in (None, "llama.cpp"):
            try:
                reply = self._post("/apply-template", conversation)
            except _NotFound:
                if self._dialect == "llama.cpp":
                    raise
                self._dialect = "vllm"
            else:
                prompt = reply.get("prompt") if isinstance(reply, dict) else None
                if not isinstance(prompt, str):
                    raise RuntimeError(f"{self._root}/apply-template: the reply has no prompt text: {str(reply)[:200]}")
                if self._dialect is None:
                    self._dialect = "llama.cpp"
                    self._default_stop_ids()
                # As llama.cpp's own chat endpoint reads a rendered prompt: the turn markers as special tokens, and
                # BOS added by the tokenizer (the server strips the template's own from the text it returns).
                body = {"content": prompt, "add_special": True, "parse_special": True}
                return self._ids(self._post("/tokenize", body))
        return self._ids(self._post("/tokenize", {"model": self.model, **conversation}))

    def _ids(self, reply: Any) -> list[int]:
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise RuntimeError(f"{self._root}/tokenize: the reply has no list of token ids: {str(reply)[:200]}")
        return tokens

    def _default_stop_ids(self) -> None:
        if self.stop_ids:
            return
        try:
            props = _request_json(f"{self._root}/props", None, self.timeout_s, self.api_key)
        except RuntimeError:
            return
        eos = props.get("eos_token") if isinstance(props, dict) else None
        if isinstance(eos, str) and eos:
            self.stop_ids = tuple(self._ids(self._post("/tokenize", {"content": eos, "parse_special": True})))

    def decode(self, ids: list[int]) -> str:
        """The generated text, the stop ids dropped (the server's detokenizer would print them as markers).

        Raises:
            RuntimeError: the reply has no text.

        """
        kept = [i for i in ids if i not in self.stop_ids]
        if self._dialect == "vllm":
            reply = self._post("/detokenize", {"model": self.model, "tokens": kept})
            text = reply.get("prompt") if isinstance(reply, dict) else None
        else:
            reply = self._post("/detokenize", {"tokens": kept})
            text = reply.get("content") if isinstance(reply, dict) else None
        if not isinstance(text, str):
            raise RuntimeError(f"{self._root}/detokenize: the reply has no text: {str(reply)[:200]}")
        return text


def _chat_tokenizer(tokenizer: Any, stop_ids: Collection[int]) -> ChatTokenizer:
    """``tokenizer`` as a :class:`ChatTokenizer` (a Hugging Face-style one is wrapped), with ``stop_ids`` if given."""
    chat = tokenizer if isinstance(tokenizer, ChatTokenizer) else HFChatTokenizer(tokenizer)
    if stop_ids:
        chat.stop_ids = stop_ids
    return chat


@dataclass
class LocalBackend:
    """A tokenizer and a local generator.

    Attributes:
        tokenizer: a :class:`ChatTokenizer`, or a Hugging Face-style tokenizer (``apply_chat_template`` /
            ``encode`` / ``decode``), which is wrapped in :class:`HFChatTokenizer`.
        generate: (prompt ids, max new tokens) -> (ids, log-probabilities or None).
        stop_ids: end-of-turn / EOS ids (default: the tokenizer's).

    """

    tokenizer: Any
    generate: ChunkGenerate  # type: ignore[assignment]
    stop_ids: Collection[int] = ()

    def __post_init__(self) -> None:
        """Wrap the tokenizer; default the stop ids to its own."""
        self._chat = _chat_tokenizer(self.tokenizer, self.stop_ids)
        self.stop_ids = self._chat.stop_ids

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The query: the chat template's rendering with the generation prompt, as ids."""
        return self._chat.render(messages, tools)

    def decode(self, ids: list[int]) -> str:
        """The generated text, control tokens dropped."""
        return self._chat.decode(ids)


@dataclass
class CompletionsBackend:
    """An OpenAI-compatible ``/v1/completions`` server that takes the prompt as token ids (vLLM, SGLang, llama.cpp).

    Requests ask for ``logprobs`` and ``return_token_ids``; the generated ids come back as the server sampled them,
    in vLLM's ``token_ids`` or in llama.cpp's ``logprobs.content[].id``. The query is rendered by ``tokenizer``: the
    model's own Hugging Face tokenizer (:func:`load_tokenizer`), or by default the server itself
    (:class:`ServerTokenizer`).

    Attributes:
        base_url: the API root up to ``/v1``.
        model: the served model's name.
        tokenizer: a :class:`ChatTokenizer` or a Hugging Face-style tokenizer; None: the server's.
        temperature: sampling temperature.
        timeout_s: timeout of one request.
        stop_ids: end-of-turn / EOS ids (default: the tokenizer's).
        api_key: sent as a bearer token when set.

    """

    base_url: str
    model: str
    tokenizer: Any = None
    temperature: float = 1.0
    timeout_s: float = 600.0
    stop_ids: Collection[int] = ()
    api_key: str | None = None

    def __post_init__(self) -> None:
        """Set up the tokenizer (the server's when none is given); default the stop ids to its own."""
        tokenizer = self.tokenizer
        if tokenizer is None:
            tokenizer = ServerTokenizer(self.base_url, self.model, min(self.timeout_s, 60.0), self.api_key)
        self._chat = _chat_tokenizer(tokenizer, self.stop_ids)
        self.stop_ids = self._chat.stop_ids

    def render(self, messages: Observation, tools: list[dict]) -> list[int]:
        """The query, rendered by the tokenizer."""
        ids = self._chat.render(messages, tools)
        if not self.stop_ids:
            self.stop_ids = self._chat.stop_ids  # the server tokenizer learns them on first use
        return ids

    def decode(self, ids: list[int]) -> str:
        """The generated text, decoded by the tokenizer, without the stop token it may end with."""
        while ids and ids[-1] in self.stop_ids:
            ids = ids[:-1]
        return self._chat.decode(ids)

    def generate(self, prompt_ids: list[int], max_new_tokens: int) -> tuple[list[int], list[float] | None]:
        """One completion request with the prompt as token ids.

        Raises:
            RuntimeError: the request failed, or the reply carries no generated ids (neither ``token_ids`` nor
                per-token ``logprobs.content``: e.g. vLLM before 0.10.2).

        """
        body = {
            "model": self.model,
            "prompt": prompt_ids,
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
            "logprobs": 1,
            "return_token_ids": True,
        }
        url = f"{self.base_url.rstrip('/')}/completions"
        reply = _request_json(url, body, self.timeout_s, self.api_key)
        choices = reply.get("choices") if isinstance(reply, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        logprobs = choice.get("logprobs") or {}
        ids = choice.get("token_ids")
        if isinstance(ids, list):  # vLLM
            values = logprobs.get("token_logprobs")
        elif isinstance(logprobs.get("content"), list):  # llama.cpp: one entry per generated token
            content = logprobs["content"]
            ids = [entry.get("id") for entry in content]
            values = [entry.get("logprob") for entry in content]
            # It stopped at an end-of-generation token (its text is empty: a control token): that id ends traces
            # and is no text of the action, whatever the tokenizer reported as EOS (Gemma's <end_of_turn> is not).
            last = content[-1] if content else {}
            if choice.get("finish_reason") == "stop" and last.get("token") == "" and isinstance(last.get("id"), int):
                if last["id"] not in self.stop_ids:
                    self.stop_ids = (*self.stop_ids, last["id"])
        else:
            raise RuntimeError(
                f"{url}: the reply carries no generated token ids (neither token_ids nor logprobs.content; "
                f"does the server support return_token_ids?): {str(reply)[:200]}"
            )
        if not all(isinstance(i, int) for i in ids):
            raise RuntimeError(f"{url}: generated ids that are not integers: {str(ids)[:200]}")
        if values is None or not all(isinstance(v, int | float) for v in values):
            return ids, None
        return ids, [float(v) for v in values]


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
        """One action per conversation: the decoded trace, with its token counts and chunks.

        The conversations of one batch are traced concurrently (a server backend then sees them in flight at once).
        """
        if len(observations) > 1:
            with ThreadPoolExecutor(max_workers=len(observations)) as pool:
                return list(pool.map(self._act_one, observations, tools))
        return [self._act_one(messages, schema) for messages, schema in zip(observations, tools, strict=True)]

    def _act_one(self, messages: Observation, schema: list[dict]) -> Action:
        trace = self.trace(messages, schema)
        with self._lock:
            self.traces.append(trace)
        usage = {"prompt_tokens": len(trace.query_ids), "completion_tokens": trace.trace_length}
        chunks = [
            {"prompt_ids": c.prompt_ids, "response_ids": c.response_ids, "response_logprobs": c.logprobs or []}
            for c in trace.chunks
        ]
        return {
            "text": self.inner.decode(trace.response_ids),
            "usage": usage,
            "chunks": chunks,
            "chunks_truncated": trace.truncated,
        }


def first_model(base_url: str, timeout_s: float = 30.0, api_key: str | None = None) -> str:
    """The first model an OpenAI-compatible server lists at ``/models`` (what ``--model`` defaults to).

    Raises:
        RuntimeError: the server did not answer, or lists no model.

    """
    url = f"{base_url.rstrip('/')}/models"
    reply = _request_json(url, None, timeout_s, api_key)
    models = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(models, list) or not models or not isinstance(models[0], dict) or "id" not in models[0]:
        raise RuntimeError(f"{url}: no model listed: {str(reply)[:200]}")
    return str(models[0]["id"])


def cli_policy(
    knobs: str,
    base_url: str,
    model: str = "",
    api_key: str | None = None,
    temperature: float | None = None,
    timeout_s: float = 600.0,
    tokenizer: str | None = None,
    parser: str = "auto",
    concurrency: int = 8,
) -> Delethink:
    """The policy of ``sandgym collect --policy openai --delethink KNOBS`` (the Rust CLI calls this).

    Args:
        knobs: :meth:`DelethinkConfig.parse`'s spec.
        base_url: the API root up to ``/v1``.
        model: the served model; empty: the first the server lists.
        api_key: bearer token, if any.
        temperature: sampling temperature (1.0 when None, the paper's).
        timeout_s: timeout of one request.
        tokenizer: :func:`load_tokenizer`'s argument; None: the server's ``/tokenize`` and ``/detokenize``.
        parser: how the decoded text is read.
        concurrency: turns traced at once.

    Raises:
        ValueError: bad knobs, or a tokenizer without a chat template.
        RuntimeError: no model given and the server lists none.

    """
    config = DelethinkConfig.parse(knobs)
    model = model or first_model(base_url, min(timeout_s, 30.0), api_key)
    backend = CompletionsBackend(
        base_url,
        model,
        None if tokenizer is None else load_tokenizer(tokenizer),
        temperature=1.0 if temperature is None else temperature,
        timeout_s=timeout_s,
        api_key=api_key,
    )
    return Delethink(backend, config=config, parser=parser, batch_size=max(1, concurrency))


__all__ = [
    "CarryMode",
    "ChatTokenizer",
    "Chunk",
    "ChunkGenerate",
    "CompletionsBackend",
    "Delethink",
    "DelethinkConfig",
    "DelethinkTrace",
    "HFChatTokenizer",
    "LocalBackend",
    "ServerTokenizer",
    "TokenBackend",
    "carry_over",
    "cli_policy",
    "delethink",
    "first_model",
    "load_tokenizer",
]
