"""Token exports: a Python policy reports each turn's token ids (as a token-level server or a local model
does), the collector records them per turn, and ``trl-tokens`` / ``verl-tokens`` write each episode as one
masked sequence, read back by pyarrow and Hugging Face ``datasets``; the sequence decodes to what the chat
template renders. The tokenizer is a byte-level BPE trained in the test with Qwen's special tokens and
TRL's Qwen3 chat template (``tiny_qwen``)."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym
import tiny_qwen
from sandgym.policies import CallablePolicy
from tiny_qwen import BROKEN, template_policy

import datasets


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_qwen.qwen_like_tokenizer()


@pytest.fixture(scope="module")
def rollouts(tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("rollouts")
    sandgym.collect("countdown-v0", 4, policy=template_policy(tokenizer), max_turns=3, out_dir=out)
    return out


def test_turns_record_the_policy_s_token_ids(rollouts, tokenizer):
    rows = pq.read_table(rollouts).to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert row["error_kind"] is None, row["error_message"]
        first, second = row["policy_turns"]
        assert first["format_error"] is not None and second["format_error"] is None
        assert tokenizer.decode(first["prompt_ids"]).endswith("<|im_start|>assistant\n")
        assert tokenizer.decode(first["completion_ids"], skip_special_tokens=True) == BROKEN
        assert len(first["completion_logprobs"]) == len(first["completion_ids"])


def test_trl_tokens_is_one_masked_sequence_per_episode(rollouts, tokenizer, tmp_path):
    out = tmp_path / "trl.parquet"
    result = sandgym.export(rollouts, "trl-tokens", out)
    assert (result.rows_out, result.dropped_without_tokens, result.first_token_gap) == (4, 0, None)
    table = pq.read_table(out)
    assert table.schema.field("prompt_ids").type == pa.list_(pa.field("item", pa.uint32(), nullable=False))
    assert table.schema.field("env_mask").type.value_type == pa.uint8()
    trajectories = {r["episode_id"]: r for r in pq.read_table(rollouts).to_pylist()}
    for row in datasets.load_dataset("parquet", data_files=str(out), split="train"):
        trajectory = trajectories[row["episode_id"]]
        turns = trajectory["policy_turns"]
        assert row["prompt_ids"] == turns[0]["prompt_ids"]
        ids, mask = row["completion_ids"], row["env_mask"]
        assert len(ids) == len(mask) == len(row["logprobs"])
        assert [i for i, m in zip(ids, mask, strict=True) if m == 1] == [i for t in turns for i in t["completion_ids"]]
        # The env tokens are the template's rendering of the env's answer between the two model turns,
        # and the second turn's context is the whole sequence up to its completion.
        env_text = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m == 0])
        assert env_text.startswith("\n<|im_start|>user\n") and "Format error" in env_text
        assert env_text.endswith("<|im_start|>assistant\n")
        context = row["prompt_ids"] + ids[: len(ids) - len(turns[1]["completion_ids"])]
        assert context == turns[1]["prompt_ids"]
        logprobs = [lp for t in turns for lp in t["completion_logprobs"]]
        assert [lp for lp, m in zip(row["logprobs"], mask, strict=True) if m == 1] == logprobs
        assert all(lp == 0.0 for lp, m in zip(row["logprobs"], mask, strict=True) if m == 0)
        assert row["reward"] == trajectory["total_reward"] and row["seed"] == trajectory["seed"]


def test_verl_tokens_names_and_missing_logprobs(tokenizer, tmp_path):
    out_dir = tmp_path / "rollouts"
    sandgym.collect("countdown-v0", 2, policy=template_policy(tokenizer, logprobs=False), max_turns=3, out_dir=out_dir)
    out = tmp_path / "verl.parquet"
    assert sandgym.export(out_dir, "verl-tokens", out).rows_out == 2
    for row in pq.read_table(out).to_pylist():
        assert len(row["response_ids"]) == len(row["response_mask"])
        assert row["response_logprobs"] is None  # no turn had them: none rather than zeros
        assert sum(row["response_mask"]) < len(row["response_mask"])
        assert isinstance(row["reward_score"], float)


def test_episodes_without_token_ids_are_left_out_and_counted(tmp_path):
    out_dir = tmp_path / "rollouts"
    sandgym.collect("countdown-v0", 3, policy="expert", out_dir=out_dir)
    result = sandgym.export(out_dir, "trl-tokens", tmp_path / "trl.jsonl")
    assert (result.rows_out, result.dropped_without_tokens) == (0, 3)
    assert "turn 0 has no prompt ids" in result.first_token_gap


def test_malformed_token_fields_end_the_episode_with_a_policy_error(tmp_path):
    def act(observations):
        return [{"text": "hi", "completion_ids": [1, 2], "completion_logprobs": [-0.5]} for _ in observations]

    def negative(observations):
        return [{"text": "hi", "prompt_ids": [-1]} for _ in observations]

    for fn, message in [(act, "2 completion ids but 1 log-probabilities"), (negative, "`prompt_ids` must be")]:
        out_dir = tmp_path / fn.__name__
        sandgym.collect("countdown-v0", 1, policy=CallablePolicy(fn), out_dir=out_dir)
        (row,) = pq.read_table(out_dir).to_pylist()
        assert row["error_kind"] == "policy" and message in row["error_message"], row["error_message"]


def test_the_python_format_list_is_the_cores(tmp_path):
    from sandgym.export import FORMATS

    with pytest.raises(ValueError, match="unknown export format") as raised:
        sandgym.export(tmp_path, "nope", tmp_path / "out.parquet")  # type: ignore[arg-type]
    assert f"(available: {', '.join(FORMATS)})" in str(raised.value)
