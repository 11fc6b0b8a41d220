"""The ``sandgym_agent`` verl agent loop, run with verl's own config objects and Continuous Token builder.

The server manager is backed by a real model (a random Qwen3 built here, greedy, with log-probabilities from its
logits) or scripted to play a calculation and then the expert's submission; the tokenizer is trained here under
TRL's Qwen3 template. Checks: masks mark exactly the generated tokens, the ids are the generated ones, the prompt
is the template's rendering, and the reward is the env's own score of the same moves.

Needs verl and torch: it runs in the verl virtualenv (``SANDGYM_REQUIRE_VERL=1`` there).
"""

import asyncio
import json
import os

import pytest
import sandgym
from sandgym import _core

if os.environ.get("SANDGYM_REQUIRE_VERL") == "1":
    import torch
    import verl  # noqa: F401
else:
    torch = pytest.importorskip("torch")
    pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402
from sandgym.integrations.verl import SandgymAgentLoop  # noqa: E402
from tiny_qwen import qwen_like_tokenizer, tiny_qwen3  # noqa: E402
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, _agent_loop_registry  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402


class ScriptedServer:
    """A calculation, then the expert's submission, as the model's token ids."""

    def __init__(self, tokenizer, env):
        self.tokenizer, self.env, self.calls, self.generated = tokenizer, env, 0, []

    async def generate(self, request_id, prompt_ids, sampling_params, **kwargs):
        self.calls += 1
        if self.calls == 1:
            text = _core.render_tool_call("calc", {"expression": "2 + 3"})
        else:
            call = self.env.expert_action()["tool_calls"][0]
            text = _core.render_tool_call(call["name"], json.loads(call["arguments"]))
        ids = self.tokenizer.encode(text + "<|im_end|>", add_special_tokens=False)
        self.generated.append(ids)
        return TokenOutput(token_ids=ids, log_probs=[-0.25] * len(ids))


class ModelServer:
    """Greedy decoding with the model itself, log-probabilities from its logits."""

    def __init__(self, model, tokenizer, max_new=12):
        self.model, self.tokenizer, self.max_new, self.generated = model, tokenizer, max_new, []

    async def generate(self, request_id, prompt_ids, sampling_params, **kwargs):
        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([prompt_ids]), max_new_tokens=self.max_new, do_sample=False,
                output_scores=True, return_dict_in_generate=True, pad_token_id=self.tokenizer.pad_token_id,
            )  # fmt: skip
        ids = out.sequences[0, len(prompt_ids) :].tolist()
        logprobs = [torch.log_softmax(s[0].float(), -1)[t].item() for s, t in zip(out.scores, ids, strict=False)]
        self.generated.append(ids)
        return TokenOutput(token_ids=ids, log_probs=logprobs)


def run_loop(server, tokenizer, row, max_turns=4):
    config = OmegaConf.create(
        {"actor_rollout_ref": {"rollout": {"prompt_length": 4096, "response_length": 1024,
                                           "multi_turn": {"max_assistant_turns": max_turns}}}}
    )  # fmt: skip

    async def main():
        loop = SandgymAgentLoop(
            trainer_config=DictConfigWrap(config), server_manager=server, tokenizer=tokenizer, processor=None,
            dataset_cls=None, data_config=DictConfigWrap(OmegaConf.create({})), hf_model_type="qwen3",
        )  # fmt: skip
        return await loop.run({"temperature": 0.0}, **row)

    return asyncio.run(main())


def verl_row(seed):
    env = sandgym.make("countdown-v0")
    env.reset(seed=seed)
    return {
        "raw_prompt": [],
        "extra_info": {"env_id": "countdown-v0", "seed": seed},
        "reward_model": {"style": "rule", "ground_truth": json.dumps(env.task)},
    }


def test_registered_under_its_name():
    assert _agent_loop_registry["sandgym_agent"]["_target_"] == "sandgym.integrations.verl.SandgymAgentLoop"


def test_a_scripted_episode_masks_ids_and_reward():
    tokenizer = qwen_like_tokenizer()
    env = sandgym.make("countdown-v0")
    env.reset(seed=3)
    server = ScriptedServer(tokenizer, env)
    out = run_loop(server, tokenizer, verl_row(3))

    assert out.reward_score == 1.0 and out.extra_fields["success"] and out.extra_fields["turns"] == 2
    assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
    generated = [i for ids in server.generated for i in ids]
    assert [i for i, m in zip(out.response_ids, out.response_mask, strict=True) if m == 1] == generated
    assert {lp for lp, m in zip(out.response_logprobs, out.response_mask, strict=True) if m == 1} == {-0.25}
    env_text = tokenizer.decode([i for i, m in zip(out.response_ids, out.response_mask, strict=True) if m == 0])
    assert "<tool_response>" in env_text and "5" in env_text, "the calc result came back as env tokens"
    fresh = sandgym.make("countdown-v0")
    opening, _ = fresh.reset(seed=3)
    messages = [{"role": m["role"], "content": m["content"]} for m in opening]
    prompt = tokenizer.apply_chat_template(messages, tools=fresh.tools, add_generation_prompt=True, tokenize=False)
    assert tokenizer.decode(out.prompt_ids) == prompt


def test_the_model_itself_generates_the_episode():
    tokenizer = qwen_like_tokenizer()
    server = ModelServer(tiny_qwen3(tokenizer), tokenizer)
    out = run_loop(server, tokenizer, verl_row(1), max_turns=2)
    generated = [i for ids in server.generated for i in ids]
    assert [i for i, m in zip(out.response_ids, out.response_mask, strict=True) if m == 1] == generated
    assert all(lp <= 0.0 for lp in out.response_logprobs)
    # The random model writes no valid call: the env's verifier scores the episode 0, as sandgym itself would.
    assert out.reward_score == 0.0 and not out.extra_fields["success"]


def test_verl_tokens_rows_are_agent_loop_outputs(tmp_path):
    # Rows of the verl-tokens export validate as verl's own AgentLoopOutput (its pydantic model) field by field,
    # and its postprocessing sees the sequence the collector recorded.
    import pyarrow.parquet as pq
    from tiny_qwen import template_policy
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput

    tokenizer = qwen_like_tokenizer()
    sandgym.collect("countdown-v0", 3, policy=template_policy(tokenizer), max_turns=3, out_dir=tmp_path / "rollouts")
    result = sandgym.export(tmp_path / "rollouts", "verl-tokens", tmp_path / "verl.parquet")
    assert result.rows_out == 3
    for row in pq.read_table(tmp_path / "verl.parquet").to_pylist():
        fields = ("prompt_ids", "response_ids", "response_mask", "response_logprobs", "reward_score")
        output = AgentLoopOutput(**{k: row[k] for k in fields}, num_turns=4, metrics=AgentLoopMetrics())
        assert output.response_ids == row["response_ids"] and output.response_mask == row["response_mask"]
        assert len(output.response_logprobs) == len(output.response_ids)
        assert tokenizer.decode(output.prompt_ids).endswith("<|im_start|>assistant\n")


def test_delethink_chunk_rows_are_agent_loop_outputs_with_the_trace_length_loss(tmp_path):
    # verl-chunks rows (one per Delethink chunk) validate as verl's AgentLoopOutput, and the paper's
    # trace-length-normalised loss is verl's own "seq-mean-token-sum" aggregation over the rows once each row's
    # token losses are divided by its trace_length column.
    import pyarrow.parquet as pq
    from sandgym.delethink import Delethink, LocalBackend
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
    from verl.trainer.ppo.core_algos import agg_loss

    tokenizer = qwen_like_tokenizer()
    text_ids = tokenizer.encode("Let me think it through, step by step. " * 5, add_special_tokens=False)
    state = {"at": 0}

    def generate(prompt, max_new):
        if max_new == 24:  # chunk 1 of a trace: write the text from its start
            state["at"] = 0
        out = text_ids[state["at"] : state["at"] + max_new]
        state["at"] += len(out)
        ids = out + [tokenizer.eos_token_id] if len(out) < max_new else out
        return ids, [-0.25 - 0.01 * i for i in range(len(ids))]

    policy = Delethink(LocalBackend(tokenizer, generate), C=24, m=12, iterations=8, keep_head=4)
    sandgym.collect("countdown-v0", 2, policy=policy, max_turns=1, group_size=2, out_dir=tmp_path / "rollouts")
    result = sandgym.export(tmp_path / "rollouts", "verl-chunks", tmp_path / "chunks.parquet")
    rows = pq.read_table(tmp_path / "chunks.parquet").to_pylist()
    assert result.rows_out == len(rows) == sum(len(t.chunks) for t in policy.traces) > 4
    fields = ("prompt_ids", "response_ids", "response_mask", "response_logprobs", "reward_score")
    for row in rows:
        output = AgentLoopOutput(**{k: row[k] for k in fields}, num_turns=1, metrics=AgentLoopMetrics())
        assert output.response_ids == row["response_ids"] and len(output.response_logprobs) == len(row["response_ids"])
    by_trace = {}
    for row in rows:  # the trace's length, reward and advantage, broadcast to each of its chunks
        by_trace.setdefault(row["traj_uid"], set()).add((row["trace_length"], row["reward_score"], row["advantage"]))
    assert all(len(values) == 1 for values in by_trace.values()) and len(by_trace) == len(policy.traces) == 4
    assert sorted(length for ((length, _, _),) in by_trace.values()) == sorted(t.trace_length for t in policy.traces)
    # Σ over a row's tokens / trace length, averaged over rows: the paper's seq-mean-token-norm-trace-length.
    width = max(len(row["response_ids"]) for row in rows)
    token_losses = torch.zeros(len(rows), width)
    mask = torch.zeros(len(rows), width)
    for i, row in enumerate(rows):
        n = len(row["response_ids"])
        token_losses[i, :n] = -torch.tensor(row["response_logprobs"])  # any per-token loss; here the NLL
        mask[i, :n] = torch.tensor(row["response_mask"], dtype=torch.float32)
    expected = sum(sum(-lp for lp in row["response_logprobs"]) / row["trace_length"] for row in rows) / len(rows)
    lengths_column = torch.tensor([row["trace_length"] for row in rows], dtype=torch.float32)
    loss = agg_loss(token_losses / lengths_column[:, None], mask, "seq-mean-token-sum")
    assert abs(float(loss) - expected) < 1e-5
