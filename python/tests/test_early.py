"""Early experience from Python: files written, read back by pyarrow and Hugging Face ``datasets``."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym
from sandgym import errors


@pytest.fixture(scope="module")
def tau_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "tau"
    result = sandgym.early_experience(out, "tau-retail-v0", episodes=3, sampler="tool-schema", k=5, threads=2)
    return out, result


def test_branches_table_has_the_documented_columns_and_k_alternatives(tau_run):
    out, result = tau_run
    assert result.episodes == 3 and result.states >= 9
    assert result.branches == result.states * 6
    table = pq.read_table(out / "branches.parquet")
    assert table.num_rows == result.branches
    assert table.schema.metadata[b"sandgym.branches_schema_version"] == b"1"
    assert table.column_names == [
        "run_id",
        "episode_id",
        "env_id",
        "task_id",
        "seed",
        "step",
        "branch",
        "is_expert",
        "sampler",
        "state",
        "action",
        "next_state",
        "reward",
        "done",
        "success",
        "observation_error",
        "error_kind",
        "error_message",
        "state_digest",
        "info",
    ]
    rows = table.to_pylist()
    by_state = {}
    for row in rows:
        by_state.setdefault((row["episode_id"], row["step"]), []).append(row)
    for group in by_state.values():
        group.sort(key=lambda r: r["branch"])
        assert [r["is_expert"] for r in group] == [True] + [False] * 5
        assert len({r["state_digest"] for r in group}) == 1
        expert = json.dumps(group[0]["action"]["tool_calls"])
        assert all(json.dumps(r["action"]["tool_calls"]) != expert for r in group[1:])
        assert group[0]["state"][0]["role"] == "system"


def test_the_three_files_load_with_datasets_and_share_the_state_text(tau_run):
    datasets = pytest.importorskip("datasets")
    out, result = tau_run
    expert = datasets.load_dataset("json", data_files=str(out / "expert_sft.jsonl"), split="train")
    iwm = datasets.load_dataset("json", data_files=str(out / "iwm_sft.jsonl"), split="train")
    assert len(expert) == result.expert_rows == result.states
    assert len(iwm) == result.iwm_rows
    assert expert.column_names == ["messages"] and iwm.column_names == ["messages"]
    for row in expert:
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert "<tool_call>" in row["messages"][2]["content"]
    states = {row["messages"][1]["content"] for row in expert}
    for row in iwm:
        system, user, assistant = row["messages"]
        assert system["role"] == "system" and "world model" in system["content"]
        assert assistant["content"].startswith("Observation:\n")
        state, _, action = user["content"].rpartition("\n\nAction: ")
        assert state in states and action
    # Parquet twins hold the same rows.
    assert pq.read_table(out / "expert_sft.parquet").num_rows == len(expert)
    # Reflection SFT from reflections written here: filters off keep all, label-leak drops the leaky one.
    prompts = [json.loads(line) for line in (out / "reflection_prompts.jsonl").read_text().splitlines()]
    assert prompts and prompts[0]["messages"][0]["content"].startswith("You will be presented with a situation")
    deleaked = (out / "reflection_prompts_deleaked.jsonl").read_text()
    assert "Expert Action" not in deleaked
    reflections = {p["id"]: f"Checking first, then {p['expert_action']}" for p in prompts}
    first = prompts[0]["id"]
    reflections[first] = "The expert action is the best one here."
    kept = sandgym.build_reflection_sft(out / "reflection_prompts.jsonl", reflections, out / "sr")
    assert (kept.kept, kept.dropped, kept.missing) == (len(prompts), 0, 0)
    filtered = sandgym.build_reflection_sft(out / "reflection_prompts.jsonl", reflections, out / "sr2", label_leak=True)
    assert (filtered.kept, filtered.dropped) == (len(prompts) - 1, 1)
    sr = datasets.load_dataset("json", data_files=str(out / "sr2" / "reflection_sft.jsonl"), split="train")
    assert len(sr) == len(prompts) - 1
    for row in sr:
        system, user, assistant = row["messages"]
        assert user["content"] in states
        assert assistant["content"].startswith("Checking first, then ")
    dropped = [json.loads(line) for line in (out / "sr2" / "reflection_sft_dropped.jsonl").read_text().splitlines()]
    assert dropped[0]["id"] == first and "label" in dropped[0]["reason"]
    # The same reflections from a Parquet file and from JSONL give the same rows as the mapping.
    ids = list(reflections)
    pq.write_table(pa.table({"id": ids, "reflection": [reflections[i] for i in ids]}), out / "r.parquet")
    lines = [json.dumps({"id": i, "reflection": reflections[i]}) for i in ids]
    (out / "r.jsonl").write_text("\n".join(lines) + "\n")
    for source in ("r.parquet", "r.jsonl"):
        from_file = sandgym.build_reflection_sft(out / "reflection_prompts.jsonl", out / source, out / source[2:])
        assert from_file.kept == kept.kept
        written = (out / source[2:] / "reflection_sft.jsonl").read_text()
        assert written == (out / "sr" / "reflection_sft.jsonl").read_text()
    (out / "bad.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(errors.InvalidArgumentError, match="line 1"):
        sandgym.build_reflection_sft(out / "reflection_prompts.jsonl", out / "bad.jsonl", out / "bad")


def test_recorded_trajectories_replay_and_bad_input_raises(tmp_path):
    sandgym.collect("countdown-v0", episodes=4, seed=5, out_dir=tmp_path / "demos")
    result = sandgym.early_experience(tmp_path / "ee", trajectories=tmp_path / "demos", k=8)
    assert result.episodes == 4 and result.states == 4 and result.alternatives == 32
    assert result.short_states == 0
    with pytest.raises(errors.InvalidArgumentError, match="already exists"):
        sandgym.early_experience(tmp_path / "ee", trajectories=tmp_path / "demos")
    with pytest.raises(errors.InvalidArgumentError, match="unknown sampler"):
        sandgym.early_experience(tmp_path / "x", "countdown-v0", sampler="nope")
    with pytest.raises(errors.InvalidArgumentError, match="give `env`"):
        sandgym.early_experience(tmp_path / "y")
    with pytest.raises(errors.UnknownEnvError):
        sandgym.early_experience(tmp_path / "z", "no-such-env")
    with pytest.raises(errors.InvalidArgumentError, match="unknown prompt id"):
        sandgym.build_reflection_sft(tmp_path / "ee" / "reflection_prompts.jsonl", {"nope": "x"}, tmp_path / "sr")


def test_policy_sampler_and_replay_method_give_the_same_rows(tmp_path):
    kwargs = {"episodes": 2, "sampler": "policy", "k": 3, "temperatures": [0.5, 1.0], "run_id": "r"}
    sandgym.early_experience(tmp_path / "fork", "countdown-v0", **kwargs)
    sandgym.early_experience(tmp_path / "replay", "countdown-v0", method="replay", **kwargs)
    fork = pq.read_table(tmp_path / "fork" / "branches.parquet").to_pylist()
    replay = pq.read_table(tmp_path / "replay" / "branches.parquet").to_pylist()

    def key(r):
        return (r["episode_id"], r["step"], r["branch"])

    assert sorted(fork, key=key) == sorted(replay, key=key)
    # Rows are written in input order whatever the scheduling, so the files are the same row for row.
    assert fork == replay
    assert {r["sampler"] for r in fork} == {"expert", "policy:random"}
