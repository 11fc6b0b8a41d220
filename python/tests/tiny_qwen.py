"""A tiny Qwen3 and a Qwen-like tokenizer, built in the test process (no downloads), for the trainer tests.

The tokenizer is a byte-level BPE trained on countdown's prompt and tool schemas, with Qwen's special tokens,
TRL's own Qwen3 chat template and TRL's response schema (which TRL's tool loop parses calls with). Needs torch,
transformers, tokenizers and TRL; the tokenizer alone needs no torch.
"""

import json

import sandgym
import tokenizers
import transformers
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
