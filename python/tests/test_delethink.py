"""Delethink's chunk protocol: the carry-over arithmetic against hand-worked sequences (both modes), traces from a
scripted generator (prompts, budgets, EOS, the iteration cap), the policy wrapper in a real collection whose
answer spans a chunk boundary, the ``/v1/completions`` backend and the server tokenizer against loopback servers
speaking vLLM's and llama.cpp's dialects, tokenizer files, and ``sandgym collect --delethink``."""

import json
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest
import sandgym
import tiny_qwen
from loopback import json_server
from sandgym import _core
from sandgym.delethink import (
    CompletionsBackend,
    Delethink,
    DelethinkConfig,
    LocalBackend,
    ServerTokenizer,
    carry_over,
    delethink,
    load_tokenizer,
)
from sandgym.integrations.trl import TOKEN_FIELDS

import datasets

EOS = 0


def scripted(text_ids, calls=None):
    """A generator that writes ``text_ids`` from the start, one chunk after the other, then EOS."""
    state = {"at": 0}

    def generate(prompt, max_new):
        if calls is not None:
            calls.append((list(prompt), max_new))
        out = text_ids[state["at"] : state["at"] + max_new]
        state["at"] += len(out)
        if len(out) < max_new:
            out = out + [EOS]
        return out, [-0.5] * len(out)

    return generate


def test_fixed_carry_is_the_head_of_chunk_one_and_the_tail_of_the_last():
    config = DelethinkConfig(chunk=8, carry=4, iterations=3, keep_head=2)
    y1, y2 = list(range(1, 9)), [9, 10, 11, 12]
    assert carry_over([y1], config) == [1, 2, 5, 6, 7, 8]
    assert carry_over([y1, y2], config) == [1, 2, 9, 10, 11, 12]


def test_progressive_carry_trims_head_and_tail_of_the_running_state():
    config = DelethinkConfig(chunk=8, carry=4, iterations=4, keep_head=2, mode="progressive")
    y1, y2, y3 = list(range(1, 9)), [9, 10, 11, 12], [13]
    assert carry_over([y1], config) == [1, 2, 7, 8]
    assert carry_over([y1, y2], config) == [1, 2, 11, 12]
    assert carry_over([y1, y2, y3], config) == [1, 2, 12, 13]  # a short chunk keeps part of the older tail
    assert carry_over([[1, 2, 3]], config) == [1, 2, 3]  # under m: kept whole


@pytest.mark.parametrize("mode", ["fixed", "progressive"])
def test_a_trace_follows_the_protocol(mode):
    config = DelethinkConfig(chunk=8, carry=4, iterations=5, keep_head=2, mode=mode)
    query = [100, 101, 102]
    text = list(range(1, 19))  # 18 tokens: chunk 1 takes 8, chunks 2 and 3 take 4 each, chunk 4 ends early
    calls = []
    trace = delethink(scripted(text, calls), query, config, stop_ids={EOS})
    assert [len(c.response_ids) for c in trace.chunks] == [8, 4, 4, 3]
    assert trace.finished and not trace.truncated and trace.chunks[-1].response_ids[-1] == EOS
    assert trace.response_ids == text + [EOS] and trace.trace_length == 19
    assert [max_new for _, max_new in calls] == [8, 4, 4, 4]
    assert calls[0][0] == query
    responses = [c.response_ids for c in trace.chunks]
    for i, chunk in enumerate(trace.chunks[1:], start=1):
        assert chunk.prompt_ids == query + carry_over(responses[:i], config)
    if mode == "fixed":
        assert trace.chunks[1].prompt_ids == query + [1, 2, 5, 6, 7, 8]
        assert trace.chunks[2].prompt_ids == query + [1, 2, 9, 10, 11, 12]
    else:
        assert trace.chunks[1].prompt_ids == query + [1, 2, 7, 8]
        assert trace.chunks[2].prompt_ids == query + [1, 2, 11, 12]
    head = config.keep_head if mode == "fixed" else 0  # fixed mode's query has absorbed the head
    for chunk in trace.chunks:
        assert len(chunk.prompt_ids) + len(chunk.response_ids) <= len(query) + head + config.chunk


def test_the_iteration_cap_truncates_within_the_budget():
    config = DelethinkConfig(chunk=8, carry=4, iterations=3, keep_head=2)
    trace = delethink(scripted(list(range(1, 100))), [7], config, stop_ids={EOS})
    assert len(trace.chunks) == 3 and trace.truncated
    assert trace.trace_length == config.budget == 8 + 2 * 4


def test_longcot_is_one_chunk_of_the_whole_budget():
    config = DelethinkConfig.longcot(16)
    trace = delethink(scripted(list(range(1, 100))), [7], config)
    assert (len(trace.chunks), trace.trace_length, trace.truncated) == (1, 16, True)
    short = delethink(scripted(list(range(1, 100))), [7], DelethinkConfig(chunk=8, carry=4, iterations=3, keep_head=2))
    assert trace.attended_tokens() > short.attended_tokens()  # O(n²) in one chunk, linear in chunks


def test_bad_knobs_and_generators_are_clear_errors():
    with pytest.raises(ValueError, match="m must be in 1..C-1"):
        DelethinkConfig(chunk=8, carry=8)
    with pytest.raises(ValueError, match="keep_head"):
        DelethinkConfig(chunk=8, carry=4, keep_head=5, mode="progressive")
    with pytest.raises(ValueError, match="carry mode"):
        DelethinkConfig(mode="sliding")  # type: ignore[arg-type]
    assert DelethinkConfig.parse("C=64,I=4,keep_head=8,carry=progressive") == DelethinkConfig(
        chunk=64, carry=32, iterations=4, keep_head=8, mode="progressive"
    )
    with pytest.raises(ValueError, match="knob 'n'"):
        DelethinkConfig.parse("C=64,n=2")
    with pytest.raises(ValueError, match="over its budget"):
        delethink(lambda prompt, n: ([1] * (n + 1), None), [7], DelethinkConfig(chunk=8, carry=4, keep_head=2))
    with pytest.raises(ValueError, match="log-probabilities"):
        delethink(lambda prompt, n: ([1, 2], [-1.0]), [7], DelethinkConfig(chunk=8, carry=4, keep_head=2))


def thinking_then_the_expert_answer() -> str:
    """Some thinking, then the expert's submission for countdown's seed 0, as text in the hermes format."""
    env = sandgym.make("countdown-v0")
    env.reset(seed=0)
    call = env.expert_action()["tool_calls"][0]
    return "Let me think about it. " * 3 + _core.render_tool_call("submit", json.loads(call["arguments"]))


def test_the_policy_plays_an_answer_that_spans_a_chunk_boundary(tmp_path):
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    text_ids = tokenizer.encode(thinking_then_the_expert_answer(), add_special_tokens=False)
    eos = tokenizer.eos_token_id
    state = {"at": 0}

    def generate(prompt, max_new):
        out = text_ids[state["at"] : state["at"] + max_new]
        state["at"] += len(out)
        return (out + [eos] if len(out) < max_new else out), None

    policy = Delethink(LocalBackend(tokenizer, generate), C=32, m=16, iterations=8, keep_head=4, parser="hermes")
    assert len(text_ids) > 32, "the answer must not fit in one chunk"
    result = sandgym.collect("countdown-v0", 1, policy=policy, max_turns=1, out_dir=tmp_path / "o")
    assert result.errors == 0
    (row,) = pq.read_table(tmp_path / "o").to_pylist()
    (trace,) = policy.traces
    assert len(trace.chunks) > 1 and trace.finished
    assert row["success"] and row["total_reward"] == 1.0  # the call was split across chunks and still parsed
    assert row["policy_turns"][0]["completion_tokens"] == trace.trace_length
    assert row["policy_turns"][0]["chunks_truncated"] is False
    assert row["policy_turns"][0]["raw_output"] == tokenizer.decode(trace.response_ids, skip_special_tokens=True)


def test_the_completions_backend_sends_token_prompts(tmp_path):
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    seen = []

    def server(path, body):
        seen.append((path, body))
        if body["max_tokens"] == 8:
            return {"choices": [{"text": "?", "token_ids": [5] * 8, "logprobs": {"token_logprobs": [-0.25] * 8}}]}
        return {"choices": [{"text": "?", "token_ids": [6, tokenizer.eos_token_id]}]}

    with json_server(server) as url:
        backend = CompletionsBackend(f"{url}/v1", "m", tokenizer, temperature=0.6)
        query = backend.render([{"role": "user", "content": "hi"}], [])
        trace = delethink(backend.generate, query, DelethinkConfig(chunk=8, carry=4, keep_head=2), backend.stop_ids)
        with json_server(lambda path, body: {"choices": [{"text": "x"}]}) as bare:
            with pytest.raises(RuntimeError, match="no generated token ids"):
                CompletionsBackend(f"{bare}/v1", "m", tokenizer).generate([1], 4)
    assert [len(c.response_ids) for c in trace.chunks] == [8, 2] and trace.finished
    assert trace.chunks[0].logprobs == [-0.25] * 8 and trace.chunks[1].logprobs is None
    path, body = seen[0]
    assert path == "/v1/completions" and body["prompt"] == query and body["return_token_ids"]
    assert body["temperature"] == 0.6 and seen[1][1]["prompt"] == query + carry_over(
        [[5] * 8], DelethinkConfig(8, 4, keep_head=2)
    )


def test_every_model_turn_of_a_tool_episode_is_its_own_trace(tmp_path):
    # Turn 1 thinks and calls calc; turn 2, whose query holds the tool's result, thinks and submits: two traces
    # of several chunks each, in one episode that scores.
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    env = sandgym.make("countdown-v0")
    env.reset(seed=0)
    answer = json.loads(env.expert_action()["tool_calls"][0]["arguments"])
    think = "Let me think about it. " * 2
    calc = tokenizer.encode(think + _core.render_tool_call("calc", {"expression": "1+2"}), add_special_tokens=False)
    submit = tokenizer.encode(think + _core.render_tool_call("submit", answer), add_special_tokens=False)
    tool_response = tokenizer.convert_tokens_to_ids("<tool_response>")
    state = {"at": 0}

    def generate(prompt, max_new):
        if max_new == 24:  # chunk 1 of a trace
            state["at"] = 0
        text = submit if tool_response in prompt else calc
        out = text[state["at"] : state["at"] + max_new]
        state["at"] += len(out)
        return (out + [tokenizer.eos_token_id] if len(out) < max_new else out), None

    policy = Delethink(LocalBackend(tokenizer, generate), C=24, m=12, iterations=8, keep_head=4, parser="hermes")
    sandgym.collect("countdown-v0", 1, policy=policy, max_turns=4, out_dir=tmp_path / "o")
    (row,) = pq.read_table(tmp_path / "o").to_pylist()
    assert row["success"] and row["num_tool_calls"] == 2
    first, second = row["policy_turns"]
    assert len(first["chunks"]) > 1 and len(second["chunks"]) > 1
    assert tool_response not in first["chunks"][0]["prompt_ids"] and tool_response in second["chunks"][0]["prompt_ids"]
    assert [len(t.chunks) for t in policy.traces] == [len(first["chunks"]), len(second["chunks"])]


def test_chunks_reach_the_rows_and_export_one_row_per_chunk(tmp_path):
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    text_ids = tokenizer.encode("Let me think it through. " * 6, add_special_tokens=False)
    eos = tokenizer.eos_token_id
    state = {"at": 0}

    def generate(prompt, max_new):
        # Every trace writes the same text from its start: chunk 1 (budget C) starts a trace. The policy plays
        # one turn at a time (batch_size 1), so traces do not interleave.
        if max_new == 24:
            state["at"] = 0
        out = text_ids[state["at"] : state["at"] + max_new]
        state["at"] += len(out)
        ids = out + [eos] if len(out) < max_new else out
        return ids, [-0.25] * len(ids)

    policy = Delethink(LocalBackend(tokenizer, generate), C=24, m=12, iterations=8, keep_head=4)
    sandgym.collect("countdown-v0", 2, policy=policy, max_turns=1, group_size=2, out_dir=tmp_path / "o")
    rows = pq.read_table(tmp_path / "o").to_pylist()
    for row in rows:
        (turn,) = row["policy_turns"]
        assert len(turn["chunks"]) > 1
        assert sum(len(c["response_ids"]) for c in turn["chunks"]) == turn["completion_tokens"]
    verl = sandgym.export(tmp_path / "o", "verl-chunks", tmp_path / "verl.parquet")
    assert verl.rows_out == sum(len(r["policy_turns"][0]["chunks"]) for r in rows)
    table = datasets.load_dataset("parquet", data_files=str(tmp_path / "verl.parquet"), split="train")
    by_episode = {r["episode_id"]: r for r in rows}
    for chunk_row in table:
        row = by_episode[chunk_row["traj_uid"]]
        chunk = row["policy_turns"][chunk_row["turn_idx"]]["chunks"][chunk_row["chunk_idx"]]
        assert chunk_row["prompt_ids"] == chunk["prompt_ids"] and chunk_row["response_ids"] == chunk["response_ids"]
        assert chunk_row["response_mask"] == [1] * len(chunk["response_ids"])
        assert chunk_row["response_logprobs"] == [-0.25] * len(chunk["response_ids"])
        assert chunk_row["trace_length"] == row["policy_turns"][0]["completion_tokens"]
        assert chunk_row["trace_truncated"] is row["policy_turns"][0]["chunks_truncated"] is False
        assert chunk_row["reward_score"] == row["total_reward"]
    trl = sandgym.export(tmp_path / "o", "trl-chunks", tmp_path / "trl.jsonl")
    assert trl.rows_out == verl.rows_out
    # TRL's rows: its rollout_func token fields, loaded by the json builder TRL's scripts use.
    trl_rows = datasets.load_dataset("json", data_files=str(tmp_path / "trl.jsonl"), split="train")
    assert set(TOKEN_FIELDS) | {"reward", "advantage", "trace_length"} <= set(trl_rows.column_names)
    for trl_row, verl_row in zip(trl_rows, table, strict=True):
        assert (
            trl_row["completion_ids"] == verl_row["response_ids"] and trl_row["env_mask"] == verl_row["response_mask"]
        )
        assert (trl_row["reward"], trl_row["trace_length"]) == (verl_row["reward_score"], verl_row["trace_length"])
    plain = tmp_path / "plain"
    sandgym.collect("countdown-v0", 1, policy="expert", out_dir=plain)
    result = sandgym.export(plain, "verl-chunks", tmp_path / "none.parquet")
    assert (result.rows_out, result.dropped_without_tokens) == (0, 1)
    assert "no turn was generated in chunks" in result.first_token_gap


class FakeLlamaCpp:
    """llama.cpp's server dialect over a local tokenizer: ``/apply-template``, ``/tokenize``, ``/detokenize``,
    ``/props``, ``/v1/models``, and ``/v1/completions`` with token prompts, writing ``text_ids`` chunk by chunk
    (each trace from its start) and reporting the ids in ``logprobs.content[].id``."""

    def __init__(self, tokenizer, text_ids, eos_token="<|im_end|>"):
        self.tokenizer, self.text_ids, self.at, self.seen, self.queries = tokenizer, text_ids, 0, [], []
        self.eos_token = eos_token  # what /props reports

    def post(self, path, body):
        self.seen.append((path, body))
        tok = self.tokenizer
        if path == "/apply-template":
            text = tok.apply_chat_template(body["messages"], tools=body.get("tools"), add_generation_prompt=True,
                                           tokenize=False)  # fmt: skip
            return {"prompt": text}
        if path == "/tokenize":
            ids = tok.encode(body["content"], add_special_tokens=body.get("add_special", False))
            self.queries.append(ids)
            return {"tokens": ids}
        if path == "/detokenize":
            return {"content": tok.decode(body["tokens"])}
        assert path == "/v1/completions" and all(isinstance(i, int) for i in body["prompt"])
        if body["prompt"] in self.queries:
            self.at = 0  # chunk 1 of a trace: its prompt is a rendered query
        out = self.text_ids[self.at : self.at + body["max_tokens"]]
        self.at += len(out)
        ended = len(out) < body["max_tokens"]
        if ended:
            out = out + [tok.eos_token_id]
        # As llama.cpp: a control token's text is empty; "stop" when it stopped at one, else "length".
        content = [{"id": i, "token": tok.decode([i], skip_special_tokens=True), "logprob": -0.5} for i in out]
        finish = "stop" if ended else "length"
        return {"choices": [{"text": tok.decode(out), "logprobs": {"content": content}, "finish_reason": finish}]}

    def get(self, path):
        if path == "/props":
            return {"eos_token": self.eos_token}
        assert path == "/v1/models"
        return {"data": [{"id": "fake-llama"}]}


def test_the_server_tokenizer_speaks_llama_cpp_and_vllm():
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    messages = [{"role": "user", "content": "hi"}]
    expected = tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    fake = FakeLlamaCpp(tokenizer, [])
    with json_server(fake.post, fake.get) as url:
        server = ServerTokenizer(f"{url}/v1")
        assert server.render(messages, []) == expected
        assert list(server.stop_ids) == [tokenizer.eos_token_id]  # learned from /props
        assert server.decode(expected[-3:] + [tokenizer.eos_token_id]) == tokenizer.decode(expected[-3:])
    assert [path for path, _ in fake.seen][:2] == ["/apply-template", "/tokenize"]

    def vllm(path, body):
        if path == "/apply-template":
            return None  # vLLM has no such endpoint: a 404
        assert body["model"] == "m"
        if path == "/tokenize":
            assert body["messages"] == messages and body["add_generation_prompt"]
            return {"tokens": expected, "count": len(expected)}
        return {"prompt": tokenizer.decode(body["tokens"])}

    with json_server(vllm) as url:
        server = ServerTokenizer(f"{url}/v1", "m")
        assert server.render(messages, []) == expected and server._dialect == "vllm"
        assert server.decode(expected[-3:]) == tokenizer.decode(expected[-3:])
    with json_server(lambda path, body: {"tokens": "nope"}) as url:
        with pytest.raises(RuntimeError, match="no prompt text"):
            ServerTokenizer(url).render(messages, [])
    with json_server(lambda path, body: {"prompt": "hi"} if path == "/apply-template" else {"tokens": "no"}) as url:
        with pytest.raises(RuntimeError, match="no list of token ids"):
            ServerTokenizer(url).render(messages, [])


def test_the_completions_backend_reads_llama_cpp_replies_and_renders_with_the_server():
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    text_ids = tokenizer.encode("Counting to ten, one by one. " * 2, add_special_tokens=False)
    # /props names another EOS than the end-of-turn token the model stops at (as Gemma's <eos> and <end_of_turn>).
    fake = FakeLlamaCpp(tokenizer, text_ids, eos_token="<|endoftext|>")
    with json_server(fake.post, fake.get) as url:
        backend = CompletionsBackend(f"{url}/v1", "fake-llama")  # no tokenizer: the server's
        policy = Delethink(backend, C=24, m=12, iterations=6, keep_head=4)
        (trace,) = [policy.trace([{"role": "user", "content": "count"}])]
        text = backend.decode(trace.response_ids)
    assert trace.finished and len(trace.chunks) > 1
    assert trace.response_ids == text_ids + [tokenizer.eos_token_id]
    assert all(c.logprobs == [-0.5] * len(c.response_ids) for c in trace.chunks)
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert backend.stop_ids == (endoftext, tokenizer.eos_token_id)  # /props's, then the one it stopped at
    assert text == tokenizer.decode(text_ids) and "<|im_end|>" not in text


def test_tokenizer_files_load_with_their_chat_template(tmp_path):
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tok")
    messages = [{"role": "user", "content": "hi"}]
    expected = tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    for path in (tmp_path / "tok", tmp_path / "tok" / "tokenizer.json"):
        loaded = load_tokenizer(str(path))
        assert loaded.render(messages, []) == expected
        assert loaded.decode(expected[-2:]) == tokenizer.decode(expected[-2:], skip_special_tokens=True)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(tmp_path / "tok" / "tokenizer.json", bare / "tokenizer.json")
    with pytest.raises(ValueError, match="no chat template"):
        load_tokenizer(str(bare / "tokenizer.json"))


SANDGYM = shutil.which("sandgym") or "sandgym"


def test_collect_with_delethink_from_the_command_line(tmp_path):
    tokenizer = tiny_qwen.qwen_like_tokenizer()
    fake = FakeLlamaCpp(tokenizer, tokenizer.encode(thinking_then_the_expert_answer(), add_special_tokens=False))
    with json_server(fake.post, fake.get) as url:

        def collect(knobs, policy="openai", out="o"):
            args = [SANDGYM, "collect", "--env", "countdown-v0", "-n", "1", "--max-turns", "1", "--policy", policy,
                    "--base-url", f"{url}/v1", "--delethink", knobs, "--parser", "hermes", "-o", str(tmp_path / out),
                    "-q"]  # fmt: skip
            return subprocess.run(args, capture_output=True, text=True, timeout=120)

        done = collect("C=32,m=16,I=8,keep_head=4")
        first_run = list(fake.seen)
        capped = collect("C=32,m=16,I=2,keep_head=4", out="capped")  # the answer needs more than 48 tokens
        bad = collect("C=32,n=2", out="x")
        expert = collect("C=32", policy="expert", out="y")
    assert done.returncode == 0, done.stderr
    (row,) = pq.read_table(tmp_path / "o").to_pylist()
    assert row["success"] and row["policy"] == "python:delethink"
    (turn,) = row["policy_turns"]
    assert len(turn["chunks"]) > 1 and turn["chunks"][0]["prompt_ids"] == fake.queries[-1]
    assert all(body["prompt"] == c["prompt_ids"] for (path, body), c in
               zip([s for s in first_run if s[0] == "/v1/completions"], turn["chunks"], strict=True))  # fmt: skip
    assert capped.returncode == 0, capped.stderr
    (turn,) = pq.read_table(tmp_path / "capped").to_pylist()[0]["policy_turns"]
    assert len(turn["chunks"]) == 2 and turn["chunks_truncated"] is True and turn["completion_tokens"] == 48
    sandgym.export(tmp_path / "capped", "verl-chunks", tmp_path / "capped.parquet")
    assert pq.read_table(tmp_path / "capped.parquet").column("trace_truncated").to_pylist() == [True, True]
    assert bad.returncode == 1 and "knob 'n'" in bad.stderr
    assert expert.returncode == 1 and "wraps `--policy openai`" in expert.stderr
