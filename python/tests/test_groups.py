"""Group rollouts, advantages, reward presets, pass-rate history: collected on the real countdown guest."""

import json
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym

SANDGYM = shutil.which("sandgym") or "sandgym"
G = 4


def run(*args, cwd=None):
    return subprocess.run([SANDGYM, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    out = tmp_path_factory.mktemp("groups") / "out"
    result = sandgym.collect("countdown-v0", 10, policy="random", max_turns=4, group_size=G, out_dir=out)
    assert result.episodes == 10 * G
    return out


def by_group(table):
    groups = {}
    for row in table.to_pylist():
        groups.setdefault(row["group_id"], []).append(row)
    return groups


def test_groups_share_task_and_seed_and_differ_in_sampling_seed(grouped):
    groups = by_group(pq.read_table(grouped))
    assert len(groups) == 10
    for gid, rows in groups.items():
        rows.sort(key=lambda r: r["group_index"])
        assert [r["group_index"] for r in rows] == list(range(G))
        assert len({r["task_id"] for r in rows}) == 1 and len({r["seed"] for r in rows}) == 1
        assert len({r["sample_seed"] for r in rows}) == G
        assert rows[0]["sample_seed"] == rows[0]["seed"]  # member 0 samples like an ungrouped episode
        assert [r["episode_id"] for r in rows] == [f"{gid}/{j}" for j in range(G)]
    # The random policy plays differently across a group's members.
    assert any(len({json.dumps(r["messages"]) for r in rows}) > 1 for rows in groups.values())


def test_collection_is_reproducible(grouped, tmp_path):
    sandgym.collect("countdown-v0", 10, policy="random", max_turns=4, group_size=G, out_dir=tmp_path / "o")
    cols = ["episode_id", "sample_seed", "messages", "advantage"]
    a = pq.read_table(grouped).select(cols).sort_by("episode_id")
    b = pq.read_table(tmp_path / "o").select(cols).sort_by("episode_id")
    assert a.equals(b)


def test_grpo_advantages_are_written_per_group(grouped):
    groups = by_group(pq.read_table(grouped))
    varied = 0
    for rows in groups.values():
        r = np.array([row["total_reward"] for row in rows])
        adv = np.array([row["advantage"] for row in rows])
        assert [row["shaped_reward"] for row in rows] == list(r)
        expected = (r - r.mean()) / (r.std(ddof=1) + 1e-6)
        np.testing.assert_allclose(adv, expected, atol=1e-9)
        varied += r.std() > 0
    assert varied > 0, "random play should give some group a mix of wins and losses"


def test_tool_use_metric_columns(grouped):
    for row in pq.read_table(grouped).to_pylist():
        tools = [m for m in row["messages"] if m["role"] == "tool"]
        ok = [m for m in tools if not m["content"].startswith("Error")]
        assert row["num_tool_successes"] == len(ok)
        wrote = sum(
            len(m["content"]) + sum(len(c["name"]) + len(c["arguments"]) for c in m["tool_calls"])
            for m in row["messages"]
            if m["role"] == "assistant"
        )
        assert row["response_chars"] == wrote
        assert row["num_tool_calls"] >= row["num_tool_successes"]


@pytest.mark.parametrize("estimator", ["grpo", "dr-grpo", "batch"])
def test_recomputed_advantages_match_their_formulas(grouped, estimator):
    table = pa.table(sandgym.compute_advantages(grouped, estimator, reward="outcome"))
    rows = table.to_pylist()
    shaped = np.array([r["shaped_reward"] for r in rows])
    success = np.array([r["success"] for r in rows])
    np.testing.assert_array_equal(shaped, np.where(success, 1.0, -1.0))
    batch_std = shaped.std(ddof=1)
    for members in by_group(table).values():
        r = np.array([m["shaped_reward"] for m in members])
        adv = np.array([m["advantage"] for m in members])
        scale = {"grpo": r.std(ddof=1) + 1e-6, "dr-grpo": 1.0, "batch": batch_std + 1e-6}[estimator]
        np.testing.assert_allclose(adv, (r - r.mean()) / scale, atol=1e-9)


def test_zero_variance_groups_can_be_dropped(grouped):
    full = pa.table(sandgym.compute_advantages(grouped))
    kept = pa.table(sandgym.compute_advantages(grouped, drop_zero_variance=True))
    flat = [g for g, rows in by_group(full).items() if len({r["shaped_reward"] for r in rows}) == 1]
    assert kept.num_rows == full.num_rows - G * len(flat)
    assert not set(flat) & set(kept.column("group_id").to_pylist())


def test_demystify_presets_and_overlong_shaping(grouped):
    code = pa.table(sandgym.compute_advantages(grouped, "dr-grpo", reward="demystify-code")).to_pylist()
    for r in code:
        turns = sum(m["role"] != "system" for m in r["messages"])
        want = 1.0 if r["success"] else min(-0.6, -1 + (turns - 2) / 2 * 0.1)
        assert r["shaped_reward"] == pytest.approx(want)
    paper = pa.table(sandgym.compute_advantages(grouped, reward="demystify-paper")).to_pylist()
    for r in paper:
        want = (1.0 if r["success"] else -1.0) + min(0.1 * r["num_tool_calls"], 0.4)
        assert r["shaped_reward"] == pytest.approx(want)
    # Overlong: full penalty for every response longer than max_len.
    shaped = pa.table(sandgym.compute_advantages(grouped, reward="outcome", overlong=(10, 5, 1.0))).to_pylist()
    for r in shaped:
        assert r["shaped_reward"] == pytest.approx((1.0 if r["success"] else -1.0) - 1.0)
    with pytest.raises(sandgym.errors.InvalidArgumentError, match="buffer"):
        sandgym.compute_advantages(grouped, reward="outcome", overlong=(10, 50, 1.0))
    with pytest.raises(sandgym.errors.InvalidArgumentError, match="unknown reward preset"):
        sandgym.compute_advantages(grouped, reward="nope")
    with pytest.raises(sandgym.errors.InvalidArgumentError, match="unknown advantage estimator"):
        sandgym.compute_advantages(grouped, "ppo")


def test_cli_collect_writes_groups_with_advantages(tmp_path):
    out = run(
        "collect", "--env", "countdown-v0", "--policy", "random", "-n", "5", "--max-turns", "4",
        "--group-size", "4", "--advantage", "dr-grpo", "-o", str(tmp_path / "o"), "-q",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    groups = by_group(pq.read_table(tmp_path / "o"))
    assert len(groups) == 5 and all(len(rows) == 4 for rows in groups.values())
    for rows in groups.values():
        r = np.array([row["total_reward"] for row in rows])
        np.testing.assert_allclose([row["advantage"] for row in rows], r - r.mean(), atol=1e-12)
    # Resuming a complete run plays nothing more.
    again = run("collect", "--env", "countdown-v0", "--policy", "random", "-n", "5", "--max-turns", "4",
                "--group-size", "4", "-o", str(tmp_path / "o"), "--resume", "-q")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "episodes: 0" in again.stdout


def test_pass_rate_history_retires_solved_prompts(tmp_path):
    rates = tmp_path / "rates.json"
    first = sandgym.collect("countdown-v0", 6, policy="expert", group_size=2, pass_rates=rates)
    assert first.episodes == 12
    history = json.loads(rates.read_text())
    assert history["version"] == 1 and len(history["prompts"]) == 6
    assert all(c == {"attempts": 2, "successes": 2} for c in history["prompts"].values())
    # Every prompt now has pass rate 1.0 >= 0.9: the next run plays none of them ...
    second = sandgym.collect("countdown-v0", 6, policy="expert", group_size=2, pass_rates=rates)
    assert second.episodes == 0
    # ... unless the threshold is above it; new prompts (seeds 6..) are played.
    third = sandgym.collect("countdown-v0", 8, policy="expert", group_size=2, pass_rates=rates, drop_pass_rate=1.01)
    assert third.episodes == 16
    fourth = sandgym.collect("countdown-v0", 8, policy="expert", pass_rates=rates)
    assert fourth.episodes == 0
    rates.write_text("not json")
    with pytest.raises(sandgym.errors.InvalidArgumentError, match="pass-rate history"):
        sandgym.collect("countdown-v0", 2, pass_rates=rates)
    assert rates.read_text() == "not json"  # a bad history is reported, not overwritten


def test_files_without_the_new_columns_still_read(grouped, tmp_path):
    new = [
        "group_id",
        "group_index",
        "sample_seed",
        "num_tool_successes",
        "response_chars",
        "shaped_reward",
        "advantage",
    ]
    table = pq.read_table(grouped)
    old = table.drop_columns(new)
    old = old.replace_schema_metadata(table.schema.metadata)
    pq.write_table(old, tmp_path / "old.parquet")
    back = pa.table(sandgym.read_trajectories(tmp_path / "old.parquet"))
    assert back.column("group_id").null_count == back.num_rows
    assert back.column("sample_seed").to_pylist() == back.column("seed").to_pylist()
    assert back.column("advantage").null_count == back.num_rows
    # Metrics are recounted from the messages.
    assert sorted(back.column("response_chars").to_pylist()) == sorted(table.column("response_chars").to_pylist())
    # Regrouping by task recovers groups from rows that carry none.
    regrouped = pa.table(sandgym.compute_advantages(tmp_path / "old.parquet", group_by="task"))
    assert regrouped.column("advantage").null_count == 0


def test_cli_openai_policy_writes_groups_with_advantages(tmp_path):
    """`collect --policy openai --group-size 4` against a loopback server standing in for a model.

    The fake model answers from the request's sampling seed, so members of a group (whose seeds differ)
    play differently: some submit the right expression, some a wrong one.
    """
    import re

    from loopback import json_server

    def model(path, body):
        seeds.append(body.get("seed"))
        task = next(m["content"] for m in body["messages"] if m["role"] == "user")
        numbers = re.search(r"Numbers: ([\d, ]+)", task).group(1)
        # Odd seeds submit the expert's answer, even ones a wrong expression.
        call = (
            solutions[numbers]
            if body.get("seed", 0) % 2
            else json.dumps({"name": "submit", "arguments": {"expression": numbers.split(",")[0]}})
        )
        return {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"<tool_call>{call}</tool_call>"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
        }

    solutions = {}
    for seed in range(4):
        env = sandgym.make("countdown-v0")
        obs, _ = env.reset(seed=seed)
        numbers = re.search(r"Numbers: ([\d, ]+)", obs[-1]["content"]).group(1)
        call = env.expert_action()["tool_calls"][0]
        solutions[numbers] = json.dumps({"name": call["name"], "arguments": json.loads(call["arguments"])})
    seeds: list = []
    with json_server(model) as url:
        out = run(
            "collect", "--env", "countdown-v0", "--policy", "openai", "--model", "fake",
            "--base-url", f"{url}/v1", "-n", "4", "--max-turns", "2",
            "--group-size", "4", "-o", str(tmp_path / "o"), "-q",
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    groups = by_group(pq.read_table(tmp_path / "o"))
    assert len(groups) == 4 and all(len(rows) == 4 for rows in groups.values())
    for rows in groups.values():
        assert len({r["sample_seed"] for r in rows}) == 4
        r = np.array([row["total_reward"] for row in rows])
        np.testing.assert_allclose([row["advantage"] for row in rows], (r - r.mean()) / (r.std(ddof=1) + 1e-6))
    assert len(set(seeds)) > 4  # the members' requests carried different seeds
    assert any(len({row["success"] for row in rows}) == 2 for rows in groups.values())
