"""TRL's environments mode over sandgym envs: ``GRPOTrainer(environment_factory=environment_factory("countdown-v0"))``.

TRL (≥ 1.8, with transformers ≥ 5.2) reads an environment's tools from the public methods of its class (typed
signature and Google-style docstring each, as for any TRL tool), calls ``reset(**row)`` with each dataset row
before generating, runs the model's tool calls against the instance, and, when the class has ``get_reward``,
scores each finished rollout with it. :func:`environment_factory` builds such a class from a sandgym env's JSON
tool schemas: each tool method steps the sandboxed env with that one call and returns the tool's result;
``reset`` replays the row's task and seed (the columns ``sandgym export --to trl-grpo`` writes); ``get_reward``
is the episode's total reward so far, from the env's own verifier.

Once the episode has ended (a ``submit``, a turn limit), further calls answer that it is over and change
nothing. Envs whose action is a final text answer rather than a tool call need a reward function that reads
``completions``; the tool methods only cover tool calls.

:func:`rollout_func` is the other way in, for users who want sandgym's own parser and multi-turn loop: a
``GRPOTrainer(rollout_func=...)`` that plays one episode per prompt with :func:`sandgym.tokens.token_rollout`
(token-in/token-out) and returns ``prompt_ids``, ``completion_ids``, ``logprobs`` and ``env_mask``, plus the
episode's ``env_reward`` and ``success`` for the reward function :func:`env_reward`.

:func:`replay_rollout_func` trains on recorded rollouts instead (off-policy): a ``sandgym export --to trl-tokens``
dataset is both the trainer's ``train_dataset`` (its ``prompt`` column) and, through the function, the source of
each prompt's completions, served group member by group member with their recorded tokens, log-probabilities and
rewards.

``import sandgym`` does not import TRL, and this module needs nothing of it either: the class is plain Python,
and the rollout function imports torch only to generate with the trainer's own model.
"""

from __future__ import annotations

import inspect
import json
import keyword
from collections.abc import Callable
from typing import Any

from sandgym import _core
from sandgym.env import SandgymEnv
from sandgym.integrations._rows import reset_to_row, row_task
from sandgym.tokens import ChatTokenizer, Generate, token_rollout

_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}

#: What a tool call answers once the episode is over.
EPISODE_OVER = "The episode is over; no more tool calls are taken."


def _python_type(schema: dict[str, Any]) -> Any:
    kind = schema.get("type", "string")
    if isinstance(kind, list):  # ["string", "null"]: the non-null one
        kind = next((k for k in kind if k != "null"), "string")
    return _JSON_TYPES.get(kind, str)


def _tool_method(function: dict[str, Any]) -> Callable[..., str]:
    """A method named after the tool, with one typed parameter per property and a Google-style docstring."""
    name = function["name"]
    if not name.isidentifier() or keyword.iskeyword(name) or name in {"reset", "get_reward"}:
        raise ValueError(f"tool `{name}` cannot be a Python method name")
    parameters = function.get("parameters") or {}
    properties: dict[str, dict[str, Any]] = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])

    def call(self: SandgymTrlEnv, **arguments: Any) -> str:
        return self._call(name, arguments)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    doc_args = []
    # Required parameters first: a Python signature cannot put a default before a non-default.
    for prop in sorted(properties, key=lambda p: p not in required):
        if not prop.isidentifier() or keyword.iskeyword(prop):
            raise ValueError(f"tool `{name}` has parameter `{prop}`, which cannot be a Python argument name")
        kind = _python_type(properties[prop])
        annotation = kind if prop in required else kind | None
        default = inspect.Parameter.empty if prop in required else None
        params.append(inspect.Parameter(prop, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
        annotations[prop] = annotation
        description = " ".join(str(properties[prop].get("description") or prop).split())
        doc_args.append(f"    {prop}: {description}")
    annotations["return"] = str
    call.__name__ = call.__qualname__ = name
    call.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    call.__annotations__ = annotations
    description = " ".join(str(function.get("description") or name).split())
    args = "\n\nArgs:\n" + "\n".join(doc_args) if doc_args else ""
    call.__doc__ = f"{description}{args}\n\nReturns:\n    The tool's result."
    return call


class SandgymTrlEnv:
    """Base of the classes :func:`environment_factory` builds: one sandboxed env per instance."""

    env_id: str = ""
    config: dict[str, Any] = {}

    def __init__(self) -> None:
        """Make the sandboxed env (TRL makes one instance per concurrent rollout and reuses it)."""
        self.env = SandgymEnv(self.env_id, self.config or None)
        self.reward = 0.0
        self.done = False
        self.calls = 0
        self._next_call = 0

    def reset(self, task: Any = None, seed: Any = None, prompt: Any = None, **row: Any) -> str | None:
        """Start the row's episode: its ``task`` (JSON text or object) and ``seed``, as exported.

        Returns:
            None when the row has a ``prompt`` (the exported prompt already holds the task); otherwise the
            env's opening text, which TRL appends to the last user message.

        """
        observation, _ = reset_to_row(self.env, task, seed)
        self.reward, self.done, self.calls, self._next_call = 0.0, False, 0, 0
        if prompt is not None:
            return None
        return "\n\n".join(m["content"] for m in observation if m["role"] != "system")

    def get_reward(self) -> float:
        """The episode's total reward so far (its verifier's score once it has ended)."""
        return self.reward

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        if self.done:
            return EPISODE_OVER
        arguments = {k: v for k, v in arguments.items() if v is not None}
        call_id = f"call_{self._next_call}"
        self._next_call += 1
        action = {"content": "", "tool_calls": [{"id": call_id, "name": name, "arguments": json.dumps(arguments)}]}
        observation, reward, terminated, truncated, _ = self.env.step(action)
        self.calls += 1
        self.reward += float(reward)
        self.done = bool(terminated or truncated)
        return "\n".join(m["content"] for m in observation)


def environment_factory(env_id: str, **config: Any) -> type[SandgymTrlEnv]:
    """A class for TRL's ``environment_factory``: tool methods from ``env_id``'s schemas, configured by ``config``.

    Example:
        >>> from trl import GRPOConfig, GRPOTrainer
        >>> trainer = GRPOTrainer(model, args=GRPOConfig(...), train_dataset=dataset,  # a trl-grpo export
        ...                       environment_factory=environment_factory("countdown-v0"))

    """
    probe = SandgymEnv(env_id, config or None)
    methods = {}
    for tool in probe.tools:
        function = tool.get("function", tool)
        methods[function["name"]] = _tool_method(function)
    class_name = "Sandgym_" + "".join(c if c.isalnum() else "_" for c in probe.id)
    attributes = {"env_id": env_id, "config": dict(config), "__doc__": f"sandgym's `{probe.id}` for TRL.", **methods}
    return type(class_name, (SandgymTrlEnv,), attributes)


def _prompt_key(prompt: Any) -> str:
    """A prompt's identity: its messages' roles and contents (or its text)."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps([[m.get("role"), m.get("content")] for m in prompt], ensure_ascii=False)


def model_generator(model: Any, tokenizer: Any, max_new_tokens: int = 256, temperature: float = 1.0) -> Generate:
    """A generator over a local Hugging Face model (``model.generate``).

    It samples, with the log-probabilities of the sampled tokens from the model's scores. Slow next to vLLM, but
    it needs nothing besides the model.
    """
    import torch  # type: ignore[import-not-found,unused-ignore]

    def generate(context: list[int]) -> tuple[list[int], list[float] | None]:
        with torch.no_grad():
            out = model.generate(
                torch.tensor([context], device=model.device),
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=tokenizer.pad_token_id,
            )
        ids = out.sequences[0, len(context) :].tolist()
        logprobs = [
            float(torch.log_softmax(score[0].float() / max(temperature, 1e-6), -1)[token])
            for score, token in zip(out.scores, ids, strict=False)
        ]
        return ids, logprobs

    return generate


def vllm_client_generator(client: Any, *, max_new_tokens: int = 256, temperature: float = 1.0) -> Generate:
    """A generator through TRL's vLLM client (``trainer.vllm_generation.vllm_client`` in server mode).

    The client posts the context's token ids to the vLLM server's ``/v1/completions`` (``return_token_ids``) and
    returns the sampled ids with their log-probabilities: token ids in, token ids out, nothing re-tokenized.

    Args:
        client: a ``trl.generation.vllm_client.VLLMClient`` (anything with its ``generate`` signature and result).
        max_new_tokens: tokens per model turn at most.
        temperature: the sampling temperature.

    Returns:
        A generator for :func:`sandgym.tokens.token_rollout`.

    """

    def generate(context: list[int]) -> tuple[list[int], list[float] | None]:
        out = client.generate(
            prompts=[list(context)], n=1, max_tokens=max_new_tokens, temperature=temperature, logprobs=0
        )
        ids = [int(i) for i in out["completion_ids"][0]]
        top, top_ids = out.get("logprobs"), out.get("logprob_token_ids")
        if top is None:
            return ids, None
        # Each position lists the top log-probabilities with their token ids; keep the sampled token's.
        logprobs = []
        for token, values, value_ids in zip(ids, top[0], top_ids[0] if top_ids else [[]] * len(ids), strict=True):
            found = [v for v, i in zip(values, value_ids, strict=False) if i == token]
            logprobs.append(float(found[0] if found else values[0]))
        return ids, logprobs

    return generate


def trainer_generator(trainer: Any, tokenizer: ChatTokenizer, max_new_tokens: int = 256) -> Generate:
    """The generator a TRL trainer offers: its vLLM server (``use_vllm``, server mode) or its own model.

    Args:
        trainer: the ``GRPOTrainer`` calling the rollout function.
        tokenizer: the trainer's tokenizer (for the local model's end-of-turn token).
        max_new_tokens: tokens per model turn at most.

    Returns:
        :func:`vllm_client_generator` over the trainer's vLLM client, else :func:`model_generator` over its model.

    Raises:
        ValueError: the trainer uses vLLM without a server client in this process (colocate mode, or a process
            other than the main one): pass ``generate=`` to the rollout function instead.

    """
    temperature = float(getattr(trainer.args, "temperature", 1.0))
    if getattr(trainer, "use_vllm", False):
        client = getattr(getattr(trainer, "vllm_generation", None), "vllm_client", None)
        if client is None:
            raise ValueError(
                "the trainer generates with vLLM but this process has no vLLM server client (colocate mode, or not "
                "the main process); give rollout_func a generate= function over the trainer's engine"
            )
        return vllm_client_generator(client, max_new_tokens=max_new_tokens, temperature=temperature)
    return model_generator(trainer.model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature)


def rollout_func(
    env_id: str,
    dataset: Any,
    *,
    generate: Generate | None = None,
    tokenizer: ChatTokenizer | None = None,
    max_turns: int = 8,
    max_new_tokens: int = 256,
    **config: Any,
) -> Callable[[list, Any], dict[str, list]]:
    """A TRL ``rollout_func`` playing ``env_id`` episodes, one per prompt, token-in/token-out.

    Args:
        env_id: the env.
        dataset: the rows the trainer draws prompts from (a ``trl-grpo`` export: ``prompt``, ``task``, ``seed``);
            TRL hands the function only the prompts, so each is matched back to its row's task and seed.
        generate: context ids -> (completion ids, log-probabilities); default: the trainer's vLLM server when it
            uses one (:func:`vllm_client_generator`), else its own model.
        tokenizer: default: the trainer's processing class.
        max_turns: model turns per episode at most.
        max_new_tokens: tokens per model turn with the default generator.
        **config: the env's configuration knobs.

    Returns:
        ``rollout(prompts, trainer)``, returning TRL's fields plus ``env_reward`` and ``success`` per prompt.

    """
    rows: dict[str, tuple[Any, Any]] = {}
    for row in dataset:
        rows.setdefault(_prompt_key(row["prompt"]), (row.get("task"), row.get("seed")))

    def rollout(prompts: list, trainer: Any) -> dict[str, list]:
        chat = tokenizer if tokenizer is not None else trainer.processing_class
        gen = generate if generate is not None else trainer_generator(trainer, chat, max_new_tokens)
        out: dict[str, list] = {key: [] for key in (*TOKEN_FIELDS, "env_reward", "success")}
        for prompt in prompts:
            found = rows.get(_prompt_key(prompt))
            if found is None:
                raise KeyError("a prompt the trainer passed is in none of the dataset's rows given to rollout_func")
            task, seed = found
            env = SandgymEnv(env_id, config or None)
            episode = token_rollout(env, gen, chat, seed=int(seed or 0), task=row_task(task), max_turns=max_turns)
            fields = episode.to_trl()
            for key in TOKEN_FIELDS:
                out[key].append(fields[key])
            out["env_reward"].append(episode.total_reward)
            out["success"].append(episode.success)
        return out

    return rollout


TOKEN_FIELDS = ("prompt_ids", "completion_ids", "logprobs", "env_mask")
"""The token fields of TRL's ``rollout_func`` output, as the ``trl-tokens`` export names its columns."""


def replay_rollout_func(dataset: Any) -> Callable[[list, Any], dict[str, list]]:
    """A TRL ``rollout_func`` that serves recorded episodes of a ``trl-tokens`` export instead of generating.

    TRL hands the function a batch of prompts (each repeated ``num_generations`` times); every occurrence of a
    prompt gets the next recorded episode of that prompt, cycling when the trainer asks for more than were
    recorded. The trainer's processing class must be the tokenizer the episodes were recorded with (their ids
    are used as they are).

    Args:
        dataset: the export's rows (``prompt``, ``prompt_ids``, ``completion_ids``, ``logprobs``, ``env_mask``,
            ``reward``), e.g. ``datasets.load_dataset("parquet", data_files=..., split="train")``.

    Returns:
        ``rollout(prompts, trainer)``, returning TRL's token fields plus ``env_reward`` per prompt (for
        :func:`env_reward`).

    Raises:
        KeyError: a row lacks a column of the export, or the trainer passes a prompt no row has.

    """
    episodes: dict[str, list[dict[str, Any]]] = {}
    for row in dataset:
        missing = [key for key in ("prompt", "reward", *TOKEN_FIELDS) if key not in row]
        if missing:
            raise KeyError(
                f"a row has no {', '.join(missing)}: replay needs a `sandgym export --to trl-tokens` dataset"
            )
        episodes.setdefault(_prompt_key(row["prompt"]), []).append(row)
    served: dict[str, int] = {}

    def rollout(prompts: list, trainer: Any) -> dict[str, list]:
        out: dict[str, list] = {key: [] for key in (*TOKEN_FIELDS, "env_reward")}
        for prompt in prompts:
            key = _prompt_key(prompt)
            recorded = episodes.get(key)
            if not recorded:
                raise KeyError("a prompt the trainer passed has no recorded episode in the dataset")
            row = recorded[served.get(key, 0) % len(recorded)]
            served[key] = served.get(key, 0) + 1
            for field in TOKEN_FIELDS:
                out[field].append(list(row[field]))
            out["env_reward"].append(float(row["reward"]))
        return out

    return rollout


def env_reward(completions: list, env_reward: list[float], **kwargs: Any) -> list[float]:
    """The reward function for :func:`rollout_func`: each episode's reward from the env's verifier."""
    return [float(r) for r in env_reward]


def _completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the last message of a conversational one.

    Structured tool calls (when TRL parsed them out of the text) are rendered back as tool-call text.
    """
    if isinstance(completion, str):
        return completion
    message = completion[-1] if completion else {}
    parts = [message.get("content") or ""]
    for call in message.get("tool_calls") or []:
        function = call.get("function", call)
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        parts.append(_core.render_tool_call(function["name"], arguments))
    return "\n".join(part for part in parts if part)


def completion_reward(env_id: str, **config: Any) -> Callable[..., list[float]]:
    """A TRL reward function that scores each completion as one move in the row's episode.

    For single-turn GRPO on a ``trl-grpo`` export (no tool loop): each completion's text (or structured tool
    calls) goes to ``env_id``'s parser as the episode's only action, after a reset with the row's ``task`` and
    ``seed``, and the step's reward (the env's verifier) is the score; text that does not parse scores the env's
    format-error reward, 0. For multi-turn tool use, use :func:`environment_factory` or :func:`rollout_func`.
    """
    env = SandgymEnv(env_id, config or None)

    def reward(completions: list, task: list, seed: list, **kwargs: Any) -> list[float]:
        scores = []
        for completion, row_task_text, row_seed in zip(completions, task, seed, strict=True):
            reset_to_row(env, row_task_text, row_seed)
            _, step_reward, _, _, _ = env.step(_completion_text(completion))
            scores.append(float(step_reward))
        return scores

    reward.__name__ = "sandgym_" + "".join(c if c.isalnum() else "_" for c in env.id)
    return reward
