"""The SkyRL export played by SkyRL-Gym through the shipped adapter (``sandgym.integrations.skyrl``).

Rows go from the exported Parquet to ``skyrl_gym.make(env_class, env_config=..., extras=...)`` exactly the
way skyrl-train does it. skyrl-train itself needs torch, ray and flash-attn, so its few lines of row
handling and of the agent loop's env calls are mirrored below (from skyrl-train 0.3.1, the release that
goes with skyrl-gym 0.4.0), each function naming the file it follows; the env side is the real skyrl-gym.
"""

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pytest
import sandgym
import transformers

import datasets

skyrl_gym = pytest.importorskip("skyrl_gym", reason="skyrl-gym is a test dependency (pyproject `test` extra)")

from omegaconf import DictConfig  # noqa: E402  (a dependency of skyrl-gym)
from sandgym.integrations import skyrl as sandgym_skyrl  # noqa: E402  (needs skyrl_gym)

ENV_CLASS = "sandgym"
MAX_TURNS = 4  # generator.max_turns; also the collector's turn cap, so truncated episodes end alike

# A ChatML template with Qwen2.5's tool-message handling (consecutive tool results share one user turn).
TEMPLATE = """
{%- for message in messages %}
{%- if message.role == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""


@pytest.fixture(scope="module")
def tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A tokenizer built in memory (no hub download) with a tool-aware chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[UNK]")
    fast.chat_template = TEMPLATE
    return fast


@pytest.fixture(scope="module")
def registered() -> str:
    return sandgym_skyrl.register(ENV_CLASS)


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    """Expert episodes (solved in one submit) and random ones (several calc turns; submitted or truncated)."""
    out = tmp_path_factory.mktemp("skyrl") / "traj"
    sandgym.collect("countdown-v0", 3, seed=100, policy="expert", out_dir=out, run_id="e")
    sandgym.collect("countdown-v0", 4, policy="random", max_turns=MAX_TURNS, out_dir=out, run_id="r")
    return out


@pytest.fixture(scope="module")
def exported(rollouts, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("skyrl_export") / "skyrl_train.parquet"
    sandgym.export(rollouts, "skyrl", path)
    return str(path)


# --- skyrl-train's row handling, mirrored ----------------------------------------------------------------


def skyrl_prompt_dataset(path: str, tokenizer, max_prompt_length: int = 100_000) -> list[dict[str, Any]]:
    """Mirrors ``PromptDataset`` (skyrl-train 0.3.1, ``skyrl_train/dataset/dataset.py``): the Parquet branch of
    ``_read_files_and_tokenize`` (load with ``datasets``, drop prompts longer than ``max_prompt_length``
    tokens), then ``__getitem__`` (pop ``prompt`` and ``env_class``; every other column is an env extra) and
    ``collate_fn`` (``{"prompt", "env_class", "env_extras", "uid"}``)."""
    ds = datasets.load_dataset("parquet", data_files=path, keep_in_memory=True)["train"]
    ds = ds.filter(
        lambda doc: len(tokenizer.apply_chat_template(doc["prompt"], add_generation_prompt=True)) <= max_prompt_length
    )
    items = []
    for item in range(len(ds)):
        row_dict: dict = ds[item]
        messages = row_dict.pop("prompt")
        env_class = row_dict.pop("env_class", None)
        extra = {key: value for key, value in row_dict.items() if key != "prompt" and key != "env_class"}
        items.append({"prompt": messages, "env_class": env_class, "env_extras": extra, "uid": str(item)})
    return items


def skyrl_prepare_generator_input(prompts: list[dict[str, Any]], n_samples_per_prompt: int) -> dict[str, list]:
    """Mirrors ``prepare_generator_input`` (skyrl-train 0.3.1, ``skyrl_train/generators/utils.py``): each prompt
    repeated ``n_samples_per_prompt`` times, ``env_class`` defaulting to ``environment.env_class``, and the
    same ``env_extras`` dict shared by a prompt's samples."""
    return {
        "prompts": [p["prompt"] for p in prompts for _ in range(n_samples_per_prompt)],
        "env_classes": [
            p["env_class"] if p["env_class"] is not None else ENV_CLASS
            for p in prompts
            for _ in range(n_samples_per_prompt)
        ],
        "env_extras": [p["env_extras"] for p in prompts for _ in range(n_samples_per_prompt)],
    }


def skyrl_agent_loop(
    prompt: list[dict],
    env_class: str,
    env_extras: dict[str, Any],
    responses: Iterator[str],
    tokenizer,
    executor: ThreadPoolExecutor,
    skyrl_gym_cfg: DictConfig | None = None,
) -> dict[str, Any]:
    """Mirrors the env side of ``SkyRLGymGenerator.agent_loop`` (skyrl-train 0.3.1,
    ``skyrl_train/generators/skyrl_gym_generator.py``) with ``use_conversation_multi_turn=True``: set
    ``env_extras["max_turns"]``, ``skyrl_gym.make`` the env with its ``environment.skyrl_gym`` section, run
    ``init`` and ``step`` on the env worker threads (``max_env_workers > 0``), append each response and its
    observations to the chat history (``_update_chat_history``), render observations with the fixed-base
    chat-template approach (``get_obs_ids_from_obs``, here as text), then ``get_metrics`` and ``close``.
    The model's responses are given instead of sampled."""
    skyrl_gym_cfg = skyrl_gym_cfg if skyrl_gym_cfg is not None else DictConfig({"max_env_workers": 2})
    env_extras["max_turns"] = MAX_TURNS
    env_config = skyrl_gym_cfg.get(env_class, DictConfig({}))
    env = skyrl_gym.make(env_class, env_config=env_config, extras=env_extras)
    base_conversation = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "I am a user."},
    ]
    base_text = tokenizer.apply_chat_template(base_conversation, add_generation_prompt=False, tokenize=False)

    chat_history = copy.deepcopy(prompt)
    chat_history, _ = executor.submit(env.init, chat_history).result()
    initial_prompt = copy.deepcopy(chat_history)
    steps, done = [], False
    while not done:
        output = next(responses)
        step_output = executor.submit(env.step, output).result()
        new_obs, done = step_output["observations"], step_output["done"]
        obs_text = ""
        if new_obs:
            obs_text = tokenizer.apply_chat_template(
                [*base_conversation, *new_obs], add_generation_prompt=not done, tokenize=False
            )[len(base_text) :]
        steps.append({**step_output, "obs_text": obs_text})
        chat_history += [{"role": "assistant", "content": output}]
        if len(new_obs) > 0:
            chat_history += new_obs
    env_metrics = env.get_metrics()
    executor.submit(env.close).result()
    return {"initial_prompt": initial_prompt, "steps": steps, "env_metrics": env_metrics, "env": env}


# --- tests ------------------------------------------------------------------------------------------------


def as_text(message: dict) -> str:
    """A recorded assistant message as the model's text: content, then Hermes ``<tool_call>`` blocks."""
    calls = [{"name": call["name"], "arguments": json.loads(call["arguments"])} for call in message["tool_calls"] or []]
    return (message["content"] or "") + "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)


def plain(message: dict) -> dict[str, str]:
    return {k: v for k, v in message.items() if v is not None and k != "tool_calls"}


def test_import_sandgym_does_not_need_skyrl_gym():
    code = (
        "import sys; sys.modules['skyrl_gym'] = None\n"  # makes `import skyrl_gym` fail
        "import sandgym, sandgym.integrations\n"
        "try:\n    import sandgym.integrations.skyrl\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install skyrl-gym" in out.stdout


def test_exported_rows_replay_through_skyrl_gym(registered, rollouts, exported, tokenizer):
    recorded = {(r["task_id"], r["seed"]): r for r in pa.table(sandgym.read_trajectories(rollouts)).to_pylist()}
    items = skyrl_prompt_dataset(exported, tokenizer)
    assert len(items) == len(recorded) == 7
    batch = skyrl_prepare_generator_input(items, n_samples_per_prompt=2)
    assert set(batch["env_classes"]) == {registered}
    outcomes = set()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="skyrl-gym-env-") as executor:
        for prompt, env_class, extras in zip(batch["prompts"], batch["env_classes"], batch["env_extras"], strict=True):
            # The env extras of an export: the row's columns other than prompt and env_class.
            assert {"env_id", "task_id", "task", "seed", "tools", "reward_spec", "extra_info"} <= set(extras)
            assert isinstance(extras["seed"], int) and isinstance(extras["task"], str)
            traj = recorded[(extras["task_id"], extras["seed"])]
            messages = traj["messages"]
            assistant_at = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
            responses = iter([as_text(messages[i]) for i in assistant_at])
            out = skyrl_agent_loop(prompt, env_class, extras, responses, tokenizer, executor)

            assert isinstance(out["env"], sandgym_skyrl.SandgymSkyRLEnv) and out["env"].env is None  # closed
            assert out["initial_prompt"] == prompt == [plain(m) for m in messages[: assistant_at[0]]]
            steps = out["steps"]
            assert len(steps) == traj["num_turns"] == len(assistant_at)
            assert [s["done"] for s in steps] == [False] * (len(steps) - 1) + [True]
            assert [s["reward"] for s in steps] == pytest.approx(traj["turn_rewards"])
            assert sum(s["reward"] for s in steps) == pytest.approx(traj["total_reward"])
            last = steps[-1]["metadata"]
            assert last["success"] == traj["success"]
            assert (last["terminated"], last["truncated"]) == (traj["terminated"], traj["truncated"])
            assert out["env_metrics"] == {
                "success": float(traj["success"]),
                "turns": traj["num_turns"],
                "total_reward": pytest.approx(traj["total_reward"]),
            }
            # Observations: the env's replies as recorded, as string-valued chat messages, rendered by the
            # chat template as SkyRL's generator renders them; none once done.
            assert steps[-1]["observations"] == [] and steps[-1]["obs_text"] == ""
            for step, at, next_at in zip(steps, assistant_at, assistant_at[1:], strict=False):
                observations = step["observations"]
                assert observations == [plain(m) for m in messages[at + 1 : next_at]]
                assert all(isinstance(v, str) for m in observations for v in m.values())
                for m in observations:
                    assert m["role"] in ("tool", "user")
                    assert m["role"] != "tool" or (m["tool_call_id"] and m["name"])
                assert step["obs_text"].startswith("<|im_start|>user\n")
                assert step["obs_text"].endswith("<|im_start|>assistant\n")
                assert all(m["content"] in step["obs_text"] for m in observations)
            outcomes.add((traj["success"], traj["terminated"], traj["truncated"]))
    # Solved, failed on submit, and cut off at max_turns all occurred.
    assert outcomes == {(True, True, False), (False, True, False), (False, False, True)}


def make_env(exported, tokenizer, env_config=None) -> Any:
    """The env of the first exported row, made by SkyRL-Gym as the generator makes it."""
    item = skyrl_prompt_dataset(exported, tokenizer)[0]
    extras = dict(item["env_extras"], max_turns=MAX_TURNS)
    env = skyrl_gym.make(item["env_class"], env_config=DictConfig(env_config or {}), extras=extras)
    prompt, metadata = env.init(copy.deepcopy(item["prompt"]))
    assert prompt == item["prompt"] and metadata["task_id"] == extras["task_id"]
    return env


def test_malformed_actions_are_observations_not_exceptions(registered, exported, tokenizer):
    env = make_env(exported, tokenizer)
    bad_json = env.step('<tool_call>{"name": "calc", "arguments": {"expression": </tool_call>')
    assert bad_json["done"] is False and bad_json["reward"] == 0.0
    assert [m["role"] for m in bad_json["observations"]] == ["user"]
    assert bad_json["observations"][0]["content"].startswith("Format error")
    no_call = env.step("I think the answer is 42.")
    assert no_call["done"] is False and "No tool call" in no_call["observations"][0]["content"]
    unknown = env.step('<tool_call>{"name": "nope", "arguments": {}}</tool_call>')
    assert unknown["observations"][0]["role"] == "tool" and "unknown tool" in unknown["observations"][0]["content"]
    # The episode goes on: the fourth turn is SkyRL's max_turns, so it ends truncated.
    last = env.step('<tool_call>{"name": "calc", "arguments": {"expression": "1 + 2"}}</tool_call>')
    assert last["done"] is True and last["observations"] == []
    assert last["metadata"]["truncated"] is True and last["metadata"]["success"] is False
    assert env.get_metrics() == {"success": 0.0, "turns": 4, "total_reward": 0.0}
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step("again")
    env.close()
    env.close()


def test_user_observation_format_and_config_errors(registered, exported, tokenizer):
    env = make_env(exported, tokenizer, {"observation_format": "user", "config": {"max_turns": 10}})
    calls = "".join(
        f'<tool_call>{{"name": "calc", "arguments": {{"expression": "{e}"}}}}</tool_call>' for e in ["1 + 2", "2 * 3"]
    )
    out = env.step(calls)
    assert out["observations"] == [
        {"role": "user", "content": "<tool_response>\n3\n</tool_response>\n<tool_response>\n6\n</tool_response>"}
    ]
    env.close()
    with pytest.raises(ValueError, match="unknown sandgym env_config keys"):
        make_env(exported, tokenizer, {"observation_fromat": "user"})
    with pytest.raises(ValueError, match="env_id"):
        skyrl_gym.make(registered, env_config=DictConfig({}), extras={"reward_spec": {"ground_truth": "{}"}})


def test_register_is_idempotent_and_guards_other_envs(registered):
    assert sandgym_skyrl.register(registered) == registered
    assert skyrl_gym.registry[registered].entry_point == sandgym_skyrl.ENTRY_POINT
    with pytest.raises(skyrl_gym.error.RegistrationError, match="already registered"):
        sandgym_skyrl.register("gsm8k")


def test_a_failing_guest_ends_its_episode_not_the_run(registered, guest_dir):
    extras = {"env_id": str(guest_dir / "hostile.wasm"), "task": json.dumps({"mode": "loop"}), "seed": 0}
    env = skyrl_gym.make(registered, env_config=DictConfig({"fuel": 50_000_000}), extras=extras)
    env.init([])
    out = env.step("go")
    assert out["done"] is True and out["reward"] == 0.0 and out["observations"] == []
    assert out["metadata"]["error"] == "OutOfFuelError" and out["metadata"]["success"] is False
    env.close()
