"""A real TRL GRPOTrainer step driving a sandgym env through TRL's environments mode (``environment_factory``).

The model is a random Qwen3 built here, the tokenizer a byte-level BPE trained here with Qwen's special tokens and
TRL's own Qwen3 chat template (plus TRL's response schema, which its tool loop parses calls with). One run patches
the model's ``generate`` to write the expert's tool call, so that tool calls certainly execute in the sandbox and
the env's reward reaches the trainer's logged rewards; one run lets the random model generate.

torch is not in the suite's main environment: these tests run in the verl virtualenv (scripts/test.sh), where
``SANDGYM_REQUIRE_TORCH=1`` turns a missing import into a failure instead of a skip.
"""

import json
import math
import os

import pytest
import sandgym
from sandgym.integrations.trl import env_reward, environment_factory, rollout_func

if os.environ.get("SANDGYM_REQUIRE_TORCH") == "1":
    import torch
    import trl
else:
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")

from tiny_qwen import qwen_like_tokenizer, tiny_qwen3  # noqa: E402

import datasets  # noqa: E402


def rows(n):
    env = sandgym.make("countdown-v0")
    out = []
    for seed in range(n):
        observation, _ = env.reset(seed=seed)
        prompt = [{"role": m["role"], "content": m["content"]} for m in observation]
        out.append({"prompt": prompt, "task": json.dumps(env.task), "seed": seed})
    return datasets.Dataset.from_list(out)


def grpo(tmp_path, tokenizer, model, **overrides):
    args = trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_completion_length=48,
        max_steps=1, logging_steps=1, report_to="none", use_cpu=True, bf16=False, seed=0, **overrides,
    )  # fmt: skip
    return trl.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=args,
        train_dataset=rows(2),
        environment_factory=environment_factory("countdown-v0"),
    )


def test_env_rewards_reach_the_trainer_through_its_tool_loop(tmp_path, monkeypatch):
    tokenizer = qwen_like_tokenizer()
    model = tiny_qwen3(tokenizer)
    trainer = grpo(tmp_path, tokenizer, model)
    experts = {}
    for seed in range(2):
        env = sandgym.make("countdown-v0")
        env.reset(seed=seed)
        call = env.expert_action()["tool_calls"][0]
        experts[seed] = json.dumps({"name": call["name"], "arguments": json.loads(call["arguments"])})
    calls = []
    original = model.generate

    def scripted(*args, **kwargs):
        # Answer each prompt with its expert's submission, as a Qwen3 tool call.
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        out = []
        for ids in input_ids.tolist():
            text = tokenizer.decode(ids)
            seed = next(s for s in experts if f"Target: {target_of(s)}" in text)
            reply = f"<tool_call>\n{experts[seed]}\n</tool_call><|im_end|>"
            calls.append(seed)
            out.append(ids + tokenizer.encode(reply, add_special_tokens=False))
        width = max(len(o) for o in out)
        padded = [o + [tokenizer.pad_token_id] * (width - len(o)) for o in out]
        return torch.tensor(padded)

    monkeypatch.setattr(model, "generate", scripted)
    trainer.train()
    monkeypatch.setattr(model, "generate", original)
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs and math.isfinite(logs[-1]["loss"])
    assert calls, "the trainer generated through the patched model"
    env_rewards = [v for k, v in logs[-1].items() if k.startswith("rewards/Sandgym_countdown") and k.endswith("/mean")]
    assert env_rewards == [1.0], logs[-1]
    assert logs[-1]["tools/call_frequency"] > 0 and logs[-1]["tools/failure_frequency"] == 0.0, logs[-1]


def target_of(seed):
    env = sandgym.make("countdown-v0")
    env.reset(seed=seed)
    return env.task["target"]


def test_a_step_with_the_random_model_itself(tmp_path):
    tokenizer = qwen_like_tokenizer()
    trainer = grpo(tmp_path, tokenizer, tiny_qwen3(tokenizer))
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs and math.isfinite(logs[-1]["loss"])


def rollout_trainer(tmp_path, tokenizer, model, generate=None):
    dataset = rows(2)
    args = trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_completion_length=256,
        max_steps=1, logging_steps=1, report_to="none", use_cpu=True, bf16=False, seed=0,
    )  # fmt: skip
    func = rollout_func("countdown-v0", dataset, generate=generate, max_turns=2, max_new_tokens=8)
    return trl.GRPOTrainer(
        model=model, processing_class=tokenizer, args=args, train_dataset=dataset,
        reward_funcs=[env_reward], rollout_func=func,
    )  # fmt: skip


def expert_reply_ids(tokenizer, seed):
    """The expert's submission for countdown's task at ``seed``, as the model's token ids (end of turn included)."""
    env = sandgym.make("countdown-v0")
    env.reset(seed=seed)
    call = env.expert_action()["tool_calls"][0]
    reply = f'<tool_call>\n{{"name": "submit", "arguments": {call["arguments"]}}}\n</tool_call><|im_end|>'
    return tokenizer.encode(reply, add_special_tokens=False)


def test_rollout_func_plays_sandgym_episodes_token_in_token_out(tmp_path):
    tokenizer = qwen_like_tokenizer()
    contexts = []

    def expert(context):
        # The expert's submission for whichever task the context renders.
        contexts.append(context)
        text = tokenizer.decode(context)
        seed = next(s for s in range(2) if f"Target: {target_of(s)}" in text)
        ids = expert_reply_ids(tokenizer, seed)
        return ids, [-0.1] * len(ids)

    trainer = rollout_trainer(tmp_path, tokenizer, tiny_qwen3(tokenizer), generate=expert)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert contexts and logs and math.isfinite(logs[-1]["loss"])
    assert logs[-1]["rewards/env_reward/mean"] == 1.0, logs[-1]


def test_rollout_func_with_the_trainers_own_model(tmp_path):
    tokenizer = qwen_like_tokenizer()
    trainer = rollout_trainer(tmp_path / "own", tokenizer, tiny_qwen3(tokenizer))
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs and math.isfinite(logs[-1]["loss"]) and logs[-1]["rewards/env_reward/mean"] == 0.0


def test_recorded_token_rollouts_replay_into_a_trainer_step(tmp_path):
    # Rollouts recorded with per-turn token ids (a Python policy reporting them, as a token-level server does),
    # exported as trl-tokens: the export is the trainer's dataset and, replayed, its rollouts.
    from sandgym.integrations.trl import replay_rollout_func
    from tiny_qwen import solutions, template_policy

    tokenizer = qwen_like_tokenizer()
    policy = template_policy(tokenizer, answers=solutions([0]))  # seed 0 solved, seed 1 not
    sandgym.collect("countdown-v0", 2, policy=policy, max_turns=3, group_size=2, out_dir=tmp_path / "rollouts")
    assert sandgym.export(tmp_path / "rollouts", "trl-tokens", tmp_path / "tokens.parquet").rows_out == 4
    dataset = datasets.load_dataset("parquet", data_files=str(tmp_path / "tokens.parquet"), split="train")
    assert sorted(dataset["reward"]) == [0.0, 0.0, 1.0, 1.0]
    replay = replay_rollout_func(dataset)
    served = []

    def rollout(prompts, trainer):
        out = replay(prompts, trainer)
        served.append(out)
        return out

    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, num_generations=2,
        max_completion_length=512, max_steps=2, logging_steps=1, report_to="none", use_cpu=True, bf16=False, seed=0,
    )  # fmt: skip
    trainer = trl.GRPOTrainer(
        model=tiny_qwen3(tokenizer), processing_class=tokenizer, args=args, train_dataset=dataset,
        reward_funcs=[env_reward], rollout_func=rollout,
    )  # fmt: skip
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(math.isfinite(entry["loss"]) for entry in logs)
    recorded = {tuple(r["completion_ids"]): r for r in dataset}
    for out, entry in zip(served, logs, strict=True):
        rows = [recorded[tuple(ids)] for ids in out["completion_ids"]]
        assert [r["env_mask"] for r in rows] == out["env_mask"]
        assert entry["rewards/env_reward/mean"] == sum(r["reward"] for r in rows) / len(rows)


def test_generation_through_trls_vllm_client(tmp_path):
    # TRL's own VLLMClient.generate (request and log-probability parsing) against a loopback server speaking
    # vLLM's /v1/completions with token prompts and return_token_ids. No vLLM here (no GPU), so the client is
    # made without its constructor, which insists on importing vllm and a live server handshake.
    import requests
    from loopback import json_server
    from sandgym.integrations.trl import vllm_client_generator
    from sandgym.tokens import token_rollout
    from trl.generation.vllm_client import VLLMClient

    tokenizer = qwen_like_tokenizer()
    seen = []

    def vllm(path, body):
        seen.append((path, body))
        choices = []
        for prompt in body["prompt"]:
            seed = next(s for s in range(2) if f"Target: {target_of(s)}" in tokenizer.decode(prompt))
            ids = expert_reply_ids(tokenizer, seed)
            # The sampled token is not the most likely one: its own log-probability must be the one kept.
            top = [{"token": "token_id:0", "logprob": -0.1}]
            content = [{"token": f"token_id:{i}", "logprob": -0.5, "top_logprobs": top} for i in ids]
            choices.append(
                {"index": 0, "text": "", "prompt_token_ids": prompt, "token_ids": ids, "logprobs": {"content": content}}
            )
        return {"choices": choices}

    with json_server(vllm) as url:
        client = VLLMClient.__new__(VLLMClient)
        client.session, client.model, client.base_url = requests.Session(), "scripted", url
        rollout = token_rollout(
            sandgym.make("countdown-v0"), vllm_client_generator(client, max_new_tokens=64), tokenizer, seed=1
        )
    assert rollout.total_reward == 1.0 and rollout.success
    path, body = seen[0]
    assert path == "/v1/completions" and body["prompt"] == [rollout.prompt_ids] and body["return_token_ids"]
    assert body["max_tokens"] == 64 and body["logprobs"] == 0
    assert rollout.completion_ids == rollout.turns[0].completion_ids and set(rollout.logprobs) == {-0.5}
