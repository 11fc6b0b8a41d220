"""Token-level rollouts keep the model's own token ids and tokenize only what the env and template add.

The tokenizer is a byte-level BPE trained here, with ChatML special tokens, wrapped by transformers'
``PreTrainedTokenizerFast`` with a ChatML chat template that lists tools; the "model" plays countdown's expert
moves, emitting them as a deliberately non-canonical token split (one token per character), which a
re-tokenizing rollout would silently replace.
"""

import json

import pytest
import sandgym
from sandgym import _core
from sandgym.tokens import TemplateDriftError, token_rollout

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

CHATML = (
    "{%- if tools %}<|im_start|>system\n"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}{% endif %}\n# Tools\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{%- for message in messages %}"
    "{%- if not (tools and loop.first and message.role == 'system') %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Renders the conversation newest first: no rendering extends an earlier one, so no delta exists.
REVERSED = CHATML.replace("{%- for message in messages %}", "{%- for message in messages | reverse %}")


def chat_tokenizer(template: str):
    special = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=600, special_tokens=special, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()
    )
    corpus = ['{"name": "calc", "arguments": {"expression": "25*4"}}', "Reach the target number", "tool_call"] * 50
    bpe.train_from_iterator(corpus, trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=template
    )


def expert_generator(env, tokenizer, calcs: int = 2):
    """Tries ``calcs`` calculations, then plays the env's expert move, as tool-call text: one token per character,
    then <|im_end|>."""
    contexts = []
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate(context):
        contexts.append(context)
        if len(contexts) <= calcs:
            text = _core.render_tool_call("calc", {"expression": f"{len(contexts)} + 2"})
        else:
            action = env.expert_action()
            text = "\n".join(
                _core.render_tool_call(call["name"], json.loads(call["arguments"])) for call in action["tool_calls"]
            )
        ids = [i for char in text for i in tokenizer.encode(char, add_special_tokens=False)] + [end]
        return ids, [-0.5] * len(ids)

    return generate, contexts


def test_an_expert_episode_as_tokens():
    tokenizer = chat_tokenizer(CHATML)
    env = sandgym.make("countdown-v0")
    generate, contexts = expert_generator(env, tokenizer)
    rollout = token_rollout(env, generate, tokenizer, seed=4)

    assert rollout.success and rollout.terminated and rollout.total_reward > 0
    assert len(rollout.turns) == 3, "two calculations, then the expert's submission"
    assert len(rollout.completion_ids) == len(rollout.loss_mask) == len(rollout.logprobs)

    # Token in, token out: each turn's context is exactly the previous context, completion and env tokens.
    assert contexts[0] == rollout.prompt_ids
    sequence = rollout.prompt_ids + rollout.completion_ids
    for turn, context in zip(rollout.turns, contexts, strict=True):
        assert turn.prompt_ids == context == sequence[: len(context)]
        assert sequence[len(context) : len(context) + len(turn.completion_ids)] == turn.completion_ids

    # The model's ids are kept as generated (one per character: the tokenizer would merge them).
    model_ids = [i for i, m in zip(rollout.completion_ids, rollout.loss_mask, strict=True) if m == 1]
    assert model_ids == [i for turn in rollout.turns for i in turn.completion_ids]
    first = rollout.turns[0]
    assert tokenizer.encode(first.text, add_special_tokens=False) != first.completion_ids[:-1]
    # Model tokens carry their log-probabilities, env tokens 0.0.
    assert {lp for lp, m in zip(rollout.logprobs, rollout.loss_mask, strict=True) if m == 1} == {-0.5}
    assert {lp for lp, m in zip(rollout.logprobs, rollout.loss_mask, strict=True) if m == 0} == {0.0}

    # The whole sequence reads as the chat template's rendering of the conversation, up to the last model token.
    played = rollout.messages[: max(i for i, m in enumerate(rollout.messages) if m["role"] == "assistant") + 1]
    rendered = tokenizer.apply_chat_template(played, tools=env.tools, tokenize=False)
    assert tokenizer.decode(sequence, skip_special_tokens=False) == rendered.removesuffix("\n")
    # Env tokens hold the tool results.
    env_text = tokenizer.decode(
        [i for i, m in zip(rollout.completion_ids, rollout.loss_mask, strict=True) if m == 0], skip_special_tokens=False
    )
    assert "<|im_start|>tool" in env_text and "<|im_start|>assistant" in env_text


def test_trainer_views():
    tokenizer = chat_tokenizer(CHATML)
    env = sandgym.make("countdown-v0")
    generate, _ = expert_generator(env, tokenizer)
    rollout = token_rollout(env, generate, tokenizer, seed=1)
    trl = rollout.to_trl()
    assert trl["env_mask"] == rollout.loss_mask and len(trl["logprobs"]) == len(trl["completion_ids"])
    verl = rollout.to_verl()
    assert verl["response_ids"] == rollout.completion_ids and verl["reward_score"] == rollout.total_reward


def test_a_generator_without_logprobs_and_a_token_budget():
    tokenizer = chat_tokenizer(CHATML)
    env = sandgym.make("countdown-v0")
    generate, _ = expert_generator(env, tokenizer)
    rollout = token_rollout(env, lambda ids: (generate(ids)[0], None), tokenizer, seed=2, max_tokens=1)
    assert rollout.logprobs is None and rollout.to_trl()["logprobs"] == [0.0] * len(rollout.completion_ids)
    assert rollout.truncated and len(rollout.turns) == 1


def test_a_template_that_rewrites_history_is_a_clear_error():
    tokenizer = chat_tokenizer(REVERSED)
    env = sandgym.make("countdown-v0")
    generate, _ = expert_generator(env, tokenizer)
    with pytest.raises(TemplateDriftError, match="does not extend the previous one"):
        token_rollout(env, generate, tokenizer, seed=4)
