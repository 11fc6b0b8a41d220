"""A tiny Qwen3 and a Qwen-like tokenizer, built in the test process (no downloads), for the trainer tests.

The tokenizer is a byte-level BPE trained on countdown's prompt and tool schemas, with Qwen's special tokens,
TRL's own Qwen3 chat template and TRL's response schema (which TRL's tool loop parses calls with). Needs torch,
transformers, tokenizers and TRL; the tokenizer alone needs no torch.
"""

import json

import sandgym
import tokenizers
import transformers
from sandgym import _core
from sandgym.policies import CallablePolicy
from trl.chat_template_utils import add_response_schema, qwen3_chat_template

# As in Qwen's tokenizer: the control tokens are special (skipped when decoding for the env); the tool and
# thinking tags are added tokens the model writes as text.
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TAGS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]


def qwen_like_tokenizer():
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=800, special_tokens=SPECIAL, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()
    )
    env = sandgym.make("countdown-v0")
    observation, _ = env.reset(seed=0)
    corpus = [m["content"] for m in observation] + [json.dumps(env.tools)] * 4
    bpe.train_from_iterator(corpus * 10, trainer)
    bpe.add_tokens(TAGS)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=qwen3_chat_template
    )
    return add_response_schema(tokenizer)


def tiny_qwen3(tokenizer):
    import torch

    config = transformers.Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.Qwen3ForCausalLM(config)


BROKEN = "I will call the tool.<tool_call>{broken</tool_call>"


def solutions(seeds):
    """The expert's expression of countdown's task at each seed, by the task's prompt text."""
    env = sandgym.make("countdown-v0")
    out = {}
    for seed in seeds:
        observation, _ = env.reset(seed=seed)
        call = env.expert_action()["tool_calls"][0]
        out[observation[-1]["content"]] = json.loads(call["arguments"])["expression"]
    return out


def template_policy(tokenizer, logprobs=True, answers=None):
    """A policy that reports token ids as a token-level server does: it renders each conversation with the chat
    template and answers turn 1 with a broken call (the env answers with a format error and the episode goes
    on), then submits ``answers[task prompt]`` (default, or for a task not in it: a wrong ``1 + 2``)."""

    def act(observations, tools):
        actions = []
        for messages, schema in zip(observations, tools, strict=True):
            prompt = tokenizer.apply_chat_template(messages, tools=schema, add_generation_prompt=True, tokenize=False)
            if sum(m["role"] == "assistant" for m in messages) == 0:
                text = BROKEN
            else:
                task = next(m["content"] for m in messages if m["role"] == "user")
                text = _core.render_tool_call("submit", {"expression": (answers or {}).get(task, "1 + 2")})
            ids = tokenizer.encode(text + "<|im_end|>", add_special_tokens=False)
            action = {
                "text": text,
                "prompt_ids": tokenizer.encode(prompt, add_special_tokens=False),
                "completion_ids": ids,
            }
            if logprobs:
                action["completion_logprobs"] = [-0.125 * (i % 4) for i in range(len(ids))]
            actions.append(action)
        return actions

    return CallablePolicy(act, name="template", with_tools=True, parser="hermes")
