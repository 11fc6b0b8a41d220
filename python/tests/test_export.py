"""Exports, each loaded by its consumer's own code: Hugging Face ``datasets``, TRL's dataset helpers
(``trl.data_utils``, which import without torch), verl's dataset classes where verl is installed
(it needs torch, so ``scripts/test.sh`` runs those tests again in a virtualenv with verl, and there they
must not skip), Early Experience by schema. SkyRL's layout is
checked here by schema and played by SkyRL-Gym through sandgym's adapter in ``test_skyrl.py``."""

import importlib
import json
import os
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sandgym
import transformers
import trl.data_utils as trl_data_utils  # installed by scripts/test.sh (without torch)

import datasets

SANDGYM = shutil.which("sandgym") or "sandgym"

# A Qwen/Hermes-style chat template: tools as JSON in the system turn, tool calls as <tool_call> JSON with
# the arguments rendered with `tojson` (so a dict renders as an object, a string as a quoted string).
TEMPLATE = """
{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools><|im_end|>
{% elif messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' %}
{%- elif message.role == 'tool' %}<|im_start|>user
<tool_response name="{{ message.name }}" id="{{ message.tool_call_id }}">
{{ message.content }}
</tool_response><|im_end|>
{% else %}<|im_start|>{{ message.role }}
{% if message.content %}{{ message.content }}{% endif %}
{%- if message.tool_calls %}{% for tc in message.tool_calls %}
<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}
</tool_call>{% endfor %}{% endif %}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}
"""


def run(*args, cwd=None):
    return subprocess.run([SANDGYM, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def tokenizer():
    """A tokenizer built in memory (no hub download) with a tool-aware chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[UNK]")
    fast.chat_template = TEMPLATE
    return fast


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    """Random-policy groups on countdown (variance within groups) plus expert episodes (successes)."""
    out = tmp_path_factory.mktemp("export") / "traj"
    sandgym.collect("countdown-v0", 8, policy="random", max_turns=4, group_size=4, out_dir=out, run_id="r")
    sandgym.collect("countdown-v0", 3, seed=100, policy="expert", group_size=2, out_dir=out, run_id="e")
    return out


def load(path):
    return datasets.load_dataset("parquet", data_files=str(path), split="train")


def test_trl_sft_renders_with_tools_and_object_arguments(groups, tmp_path, tokenizer):
    result = sandgym.export(groups, "trl-sft", tmp_path / "sft.parquet", success_only=True)
    assert result.rows_out == result.rows_in - result.dropped_unsuccessful > 0
    ds = load(tmp_path / "sft.parquet")
    assert ds.column_names == ["messages", "tools"]
    row = ds[0]
    assert trl_data_utils.is_conversational(row)
    assert isinstance(row["tools"], list) and row["tools"][0]["function"]["name"] == "calc"
    call = next(m for m in row["messages"] if m["tool_calls"])["tool_calls"][0]
    assert call["type"] == "function" and isinstance(call["function"]["arguments"], dict)
    tool_msg = next(m for m in row["messages"] if m["role"] == "tool")
    assert tool_msg["tool_call_id"] == call["id"] and tool_msg["name"] == call["function"]["name"]
    text = trl_data_utils.apply_chat_template({"messages": row["messages"]}, tokenizer, tools=row["tools"])["text"]
    assert '"name": "calc"' in text
    assert '"arguments": {"expression": ' in text  # an object, not a JSON string
    assert "<tool_response" in text
    # The same rows through TRL's dataset-level map, as SFTTrainer prepares them.
    mapped = ds.map(lambda r: trl_data_utils.maybe_apply_chat_template(r, tokenizer, tools=r["tools"]))
    assert all(t.startswith("<|im_start|>system") for t in mapped["text"])


def test_trl_sft_jsonl_loads_with_the_json_builder(groups, tmp_path):
    sandgym.export(groups, "trl-sft", tmp_path / "sft.jsonl", success_only=True)
    first = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[0])
    assert set(first) == {"messages", "tools"}
    assert "tool_calls" not in first["messages"][0]  # absent, not null, in JSONL
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "sft.jsonl"), split="train")
    assert trl_data_utils.is_conversational(ds[0])


def test_trl_grpo_prompts_with_reward_columns(groups, tmp_path, tokenizer):
    result = sandgym.export(groups, "trl-grpo", tmp_path / "grpo.parquet")
    ds = load(tmp_path / "grpo.parquet")
    assert result.rows_out == ds.num_rows == 8 + 3
    row = ds[0]
    assert trl_data_utils.is_conversational({"prompt": row["prompt"]})
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["num_samples"] == len(row["rewards"]) == len(row["advantages"]) == 4
    assert row["mean_reward"] == pytest.approx(sum(row["rewards"]) / 4)
    assert json.loads(row["task"]) and row["task_id"]
    prompt = trl_data_utils.maybe_apply_chat_template({"prompt": row["prompt"]}, tokenizer, tools=row["tools"])
    assert prompt["prompt"].endswith("<|im_start|>assistant\n")
    # Replaying the prompt's task reproduces the prompt: what a GRPO environment_factory would do.
    env = sandgym.make(row["env_id"])
    obs, _ = env.reset(seed=row["seed"], options={"task": json.loads(row["task"])})
    assert [(m["role"], m["content"]) for m in obs] == [(m["role"], m["content"]) for m in row["prompt"]]


def test_trl_dpo_pairs_best_and_worst_of_a_group(groups, tmp_path, tokenizer):
    result = sandgym.export(groups, "trl-dpo", tmp_path / "dpo.parquet", reward="outcome")
    ds = load(tmp_path / "dpo.parquet")
    assert ds.num_rows == result.rows_out > 0
    assert result.rows_out + result.groups_without_pair == 8 + 3
    for row in ds:
        assert row["chosen_reward"] > row["rejected_reward"]
        assert row["chosen"][0]["role"] == "assistant" and row["rejected"][0]["role"] == "assistant"
    row = ds[0]
    rendered = trl_data_utils.apply_chat_template(
        {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}, tokenizer, tools=row["tools"]
    )
    assert rendered["prompt"].endswith("<|im_start|>assistant\n")
    assert rendered["chosen"] and rendered["rejected"] and rendered["chosen"] != rendered["rejected"]
    # The implicit-prompt form (chosen/rejected hold the whole conversation) splits back to the same prompt.
    implicit = {"chosen": row["prompt"] + row["chosen"], "rejected": row["prompt"] + row["rejected"]}
    extracted = trl_data_utils.maybe_extract_prompt(implicit)
    assert extracted["prompt"] == row["prompt"]


def verl_module(name: str):
    """A verl module; skips without verl (it needs torch) unless SANDGYM_REQUIRE_VERL=1 demands it."""
    if os.environ.get("SANDGYM_REQUIRE_VERL") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name, reason="verl needs torch: scripts/test.sh runs this in its verl virtualenv")


def test_verl_rl_layout(groups, tmp_path):
    sandgym.export(groups, "verl-rl", tmp_path / "rl.parquet", split="train")
    table = pq.read_table(tmp_path / "rl.parquet")
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info", "agent_name"]
    assert table.schema.field("reward_model").type.names == ["style", "ground_truth"]
    row = table.to_pylist()[0]
    assert row["data_source"] == "sandgym/countdown"
    assert [set(m) for m in row["prompt"]] == [{"role", "content"}] * 2
    assert row["reward_model"]["style"] == "rule" and json.loads(row["reward_model"]["ground_truth"])
    assert row["extra_info"]["split"] == "train" and row["extra_info"]["index"] == 0
    assert row["agent_name"] == "tool_agent" and row["ability"] == "tool_use"
    assert load(tmp_path / "rl.parquet").num_rows == table.num_rows


def test_verl_rl_loads_with_rlhf_dataset(groups, tmp_path, tokenizer):
    rl_dataset = verl_module("verl.utils.dataset.rl_dataset")
    from omegaconf import OmegaConf

    sandgym.export(groups, "verl-rl", tmp_path / "rl.parquet")
    config = OmegaConf.create({"prompt_key": "prompt", "max_prompt_length": 100000, "filter_overlong_prompts": False})
    ds = rl_dataset.RLHFDataset(data_files=[str(tmp_path / "rl.parquet")], tokenizer=tokenizer, config=config)
    assert len(ds) == 8 + 3
    item = ds[0]
    assert item["data_source"] == "sandgym/countdown"


def test_verl_sft_layout_and_multiturn_dataset(groups, tmp_path, tokenizer):
    sandgym.export(groups, "verl-sft", tmp_path / "sft.parquet", success_only=True)
    ds = load(tmp_path / "sft.parquet")
    assert ds.column_names == ["messages", "tools"]
    assert {m["role"] for m in ds[0]["messages"]} >= {"system", "user", "assistant", "tool"}
    sft = verl_module("verl.utils.dataset.multiturn_sft_dataset")
    from omegaconf import OmegaConf

    config = OmegaConf.create(
        {"max_length": 100000, "truncation": "right", "multiturn": {"messages_key": "messages", "tools_key": "tools"}}
    )
    verl_ds = sft.MultiTurnSFTDataset(parquet_files=[str(tmp_path / "sft.parquet")], tokenizer=tokenizer, config=config)
    assert len(verl_ds) == ds.num_rows
    item = verl_ds[0]
    assert len(item["input_ids"]) == len(item["loss_mask"]) > 0
    assert 0 < int(item["loss_mask"].sum()) < len(item["loss_mask"])  # loss on assistant turns only


def test_skyrl_layout(groups, tmp_path):
    sandgym.export(groups, "skyrl", tmp_path / "sky.parquet", env_class="sandgym_countdown")
    ds = load(tmp_path / "sky.parquet")
    row = ds[0]
    for key in ["data_source", "prompt", "env_class", "reward_spec", "extra_info"]:
        assert key in row
    assert row["env_class"] == "sandgym_countdown"
    assert row["reward_spec"]["method"] == "rule" and json.loads(row["reward_spec"]["ground_truth"])
    # Env extras: the env gets env_id, task and seed to replay the task.
    assert row["env_id"] == "countdown-v0" and json.loads(row["task"]) and isinstance(row["seed"], int)


def test_early_expert_layout_round_trips_actions(groups, tmp_path):
    result = sandgym.export(groups, "early-expert", tmp_path / "expert_sft.jsonl", success_only=True)
    lines = (tmp_path / "expert_sft.jsonl").read_text().splitlines()
    assert len(lines) == result.rows_out > 0
    for line in lines:
        messages = json.loads(line)["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        action = sandgym.parse_action(messages[2]["content"])
        assert action["tool_calls"] and not action.get("format_error")
    # The same layout as `sandgym early-experience` writes for its expert file.
    assert "Action:" in json.loads(lines[1])["messages"][1]["content"]


def test_cli_export_and_its_errors(groups, tmp_path):
    out = run("export", str(groups), "--to", "trl-dpo", "-o", str(tmp_path / "d.parquet"),
              "--advantage", "dr-grpo", "--reward", "demystify-paper", "--drop-zero-variance")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "trl-dpo:" in out.stdout and (tmp_path / "d.parquet").exists()
    bad = run("export", str(groups), "--to", "trl-ppo", "-o", str(tmp_path / "x.parquet"))
    assert bad.returncode == 1 and "unknown export format" in bad.stderr
    bad = run("export", str(groups), "--to", "trl-sft", "-o", str(tmp_path / "x.csv"))
    assert bad.returncode == 1 and ".parquet or .jsonl" in bad.stderr
    missing = run("export", str(tmp_path / "nope"), "--to", "trl-sft", "-o", str(tmp_path / "x.parquet"))
    assert missing.returncode == 1 and not (tmp_path / "x.parquet").exists()
    with pytest.raises(sandgym.errors.InvalidArgumentError, match="unknown export format"):
        sandgym.export(groups, "nope", tmp_path / "x.parquet")  # type: ignore[arg-type]


def test_export_recomputes_advantages_for_grpo_rows(groups, tmp_path):
    sandgym.export(groups, "trl-grpo", tmp_path / "g.parquet", advantage="dr-grpo", reward="outcome")
    for row in pa.Table.from_pylist(load(tmp_path / "g.parquet").to_list()).to_pylist():
        mean = sum(row["rewards"]) / len(row["rewards"])
        assert row["advantages"] == pytest.approx([r - mean for r in row["rewards"]])
        assert set(row["rewards"]) <= {1.0, -1.0}
