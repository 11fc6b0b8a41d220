"""Token-level rollouts: one episode as one token sequence, built token-in/token-out.

On-policy RL trains on the exact tokens the model produced. Re-tokenizing the conversation's text between turns
breaks that (a model may emit a token split the tokenizer would never produce, and chat templates rewrite past
turns), so :func:`token_rollout` never does: the model's completion ids are kept as generated, and only what
the env and the chat template add between turns is tokenized, as the *delta* of the template's rendering after
each model turn (for templates that rewrite past turns, such as Qwen3's, the delta of the new messages after a
neutral one-message conversation). The result is what trainers consume:

- ``prompt_ids``: the first prompt (system prompt, task, generation prompt);
- ``completion_ids``: everything after it, model and env tokens in order;
- ``loss_mask``: 1 for each model token, 0 for each env or template token (TRL's ``env_mask``, verl's
  ``response_mask``);
- ``logprobs``: the model's log-probability of each completion token where the generator reports them (0.0 for
  env tokens), else None.

The generator is the trainer's: a function from the context's token ids to the completion's ids (and
log-probabilities), backed by vLLM, a llama.cpp server, TRL's vLLM client, verl's server manager or a local model.
The tokenizer is any object with Hugging Face's ``apply_chat_template`` / ``encode`` / ``decode``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandgym.env import SandgymEnv


class ChatTokenizer(Protocol):
    """What a token rollout needs of a tokenizer (a Hugging Face tokenizer has all of it)."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
        """Render messages (with ``tools``, ``add_generation_prompt``, ``tokenize=False``) as text."""
        ...

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]:
        """Token ids of ``text``."""
        ...

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = ...) -> str:
        """Text of ``token_ids``."""
        ...


#: The trainer's generator: context token ids -> (completion ids, their log-probabilities or None).
Generate = Callable[[list[int]], "tuple[list[int], list[float] | None]"]


class TemplateDriftError(ValueError):
    """The chat template's next rendering does not extend its rendering of the conversation so far.

    It rewrites past turns or trims the model's text, so env tokens cannot be appended as a delta without
    re-tokenizing.
    """


@dataclass
class TokenTurn:
    """One model turn: the context it saw, what it generated, and the text the env was stepped with."""

    prompt_ids: list[int]
    completion_ids: list[int]
    completion_logprobs: list[float] | None
    text: str


@dataclass
class TokenRollout:
    """One episode as tokens, with its outcome (see the module docstring for the token fields)."""

    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = field(default_factory=list)
    turns: list[TokenTurn] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    total_reward: float = 0.0
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def to_trl(self) -> dict[str, Any]:
        """The fields of TRL's ``rollout_func`` output for this episode.

        ``prompt_ids``, ``completion_ids``, ``logprobs``, ``env_mask``, plus ``reward``; TRL wants ``logprobs``
        always, so missing ones are 0.0.
        """
        logprobs = self.logprobs if self.logprobs is not None else [0.0] * len(self.completion_ids)
        return {
            "prompt_ids": self.prompt_ids,
            "completion_ids": self.completion_ids,
            "logprobs": logprobs,
            "env_mask": self.loss_mask,
            "reward": self.total_reward,
        }

    def to_verl(self) -> dict[str, Any]:
        """The fields in verl's agent-loop naming.

        ``prompt_ids``, ``response_ids``, ``response_mask``, ``response_logprobs`` (None when the generator gave
        none) and ``reward_score``.
        """
        return {
            "prompt_ids": self.prompt_ids,
            "response_ids": self.completion_ids,
            "response_mask": self.loss_mask,
            "response_logprobs": self.logprobs,
            "reward_score": self.total_reward,
        }


def _render(tokenizer: ChatTokenizer, messages: list[dict], tools: list[dict], generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(
        messages, tools=tools or None, add_generation_prompt=generation_prompt, tokenize=False
    )
    if not isinstance(text, str):
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, not text")
    return text


def _delta(before: str, after: str, what: str) -> str:
    if not after.startswith(before):
        pairs = enumerate(zip(before, after, strict=False))
        at = next((i for i, (a, b) in pairs if a != b), min(len(before), len(after)))
        raise TemplateDriftError(
            f"the chat template's rendering {what} does not extend the previous one: they differ at character "
            f"{at} ({before[at : at + 40]!r} became {after[at : at + 40]!r})"
        )
    return after[len(before) :]


def _closing(turn_text: str, text: str, ids: list[int], tokenizer: ChatTokenizer) -> str:
    """What the template writes after the model's text in its rendering of the model's turn.

    Templates may put text of their own before it (Qwen3 renders an empty ``<think>`` block the model did not
    write) and trim the text's edges; neither is added to the sequence, which keeps the model's tokens as they
    were. An end-of-turn token the model emitted itself is not written again.
    """
    for candidate in (text, text.lstrip("\n"), text.strip()):
        at = turn_text.find(candidate)
        if at >= 0:
            closing = turn_text[at + len(candidate) :]
            break
    else:
        raise TemplateDriftError(
            f"the chat template's rendering of the model's turn does not contain the model's text: "
            f"{turn_text[:80]!r} holds no {text[:40]!r}"
        )
    if ids:
        last = tokenizer.decode(ids[-1:], skip_special_tokens=False)
        emitted_special = last and not tokenizer.decode(ids[-1:], skip_special_tokens=True)
        if emitted_special and closing.startswith(last):
            closing = closing[len(last) :]
    return closing


def _env_delta(tokenizer: ChatTokenizer, tools: list[dict], closed: str, after: str, observation: list[dict]) -> str:
    """The env's messages and the next generation prompt, as the template renders them.

    Where the template's rendering of the whole conversation extends the previous one, that is the delta. Some
    templates rewrite history instead (Qwen3 drops the ``<think>`` block of assistant turns once a user message
    follows): the new messages are then rendered after a neutral one-message conversation, which such templates
    leave alone. The sequence keeps what the model saw and wrote either way.
    """
    if after.startswith(closed):
        return after[len(closed) :]
    anchor = [{"role": "user", "content": ""}]
    return _delta(
        _render(tokenizer, anchor, tools, generation_prompt=False),
        _render(tokenizer, anchor + list(observation), tools, generation_prompt=True),
        "after the env's messages",
    )


def token_rollout(
    env: SandgymEnv,
    generate: Generate,
    tokenizer: ChatTokenizer,
    *,
    seed: int = 0,
    task: Any = None,
    max_turns: int = 16,
    max_tokens: int | None = None,
) -> TokenRollout:
    """Play one episode of ``env`` with ``generate``, recording every token.

    Args:
        env: the env (``sandgym.make(...)``); its tools go to the chat template.
        generate: context ids -> (completion ids, log-probabilities or None); it should stop at the model's
            end-of-turn token.
        tokenizer: renders the chat template and tokenizes what the env adds.
        seed: the episode seed.
        task: a task to play instead of a generated one.
        max_turns: model turns at most (the episode is then truncated, after the last model token).
        max_tokens: prompt plus completion tokens at most; the episode is truncated once they are reached.

    Raises:
        TemplateDriftError: the template's renderings share no prefix even for the new messages alone, or its
            rendering of the model's turn does not contain the model's text, so no delta can be taken.

    """
    options = {"task": task} if task is not None else None
    observation, info = env.reset(seed=seed, options=options)
    tools = env.tools
    messages = list(observation)
    rendered = _render(tokenizer, messages, tools, generation_prompt=True)
    rollout = TokenRollout(prompt_ids=tokenizer.encode(rendered, add_special_tokens=False), messages=messages)
    rollout.info = info
    for turn in range(max_turns):
        context = rollout.prompt_ids + rollout.completion_ids
        ids, logprobs = generate(list(context))
        ids = list(ids)
        if logprobs is not None and len(logprobs) != len(ids):
            raise ValueError(f"generate returned {len(ids)} ids but {len(logprobs)} log-probabilities")
        text = tokenizer.decode(ids, skip_special_tokens=True)
        rollout.turns.append(TokenTurn(list(context), ids, None if logprobs is None else list(logprobs), text))
        rollout.completion_ids += ids
        rollout.loss_mask += [1] * len(ids)
        if logprobs is None:
            rollout.logprobs = None  # one turn without them: the sequence has none
        elif rollout.logprobs is not None:
            rollout.logprobs.extend(logprobs)

        observation, reward, terminated, truncated, step_info = env.step(text)
        rollout.total_reward += float(reward)
        rollout.success = bool(step_info.get("success", False))
        rollout.terminated, rollout.truncated, rollout.info = terminated, truncated, step_info
        messages.append({"role": "assistant", "content": text})
        if terminated or truncated or turn == max_turns - 1:
            # The sequence ends with the model's last token: nothing after it is trained on or generated from.
            messages.extend(observation)
            rollout.truncated = truncated or not terminated
            break
        # What the template puts after the generated tokens to close the turn (an end-of-turn token the model
        # did not emit, a newline), then the env's messages and the next generation prompt: env tokens, mask 0.
        closed = _render(tokenizer, messages, tools, generation_prompt=False)
        turn_text = _delta(rendered, closed, "after the model's turn")
        closing = _closing(turn_text, text, ids, tokenizer)
        messages.extend(observation)
        after = _render(tokenizer, messages, tools, generation_prompt=True)
        env_text = closing + _env_delta(tokenizer, tools, closed, after, observation)
        env_ids = tokenizer.encode(env_text, add_special_tokens=False)
        rollout.completion_ids += env_ids
        rollout.loss_mask += [0] * len(env_ids)
        if rollout.logprobs is not None:
            rollout.logprobs += [0.0] * len(env_ids)
        rendered = after
        if max_tokens is not None and len(rollout.prompt_ids) + len(rollout.completion_ids) >= max_tokens:
            rollout.truncated = True
            break
    return rollout
