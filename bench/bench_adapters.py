"""Env-side CPU per rollout inside each trainer adapter vs the same trainer's native env for the same task.

The same scripted rollout on both sides of every row (countdown: three ``calc`` calls and a ``submit`` of the
expert's answer), in CPU seconds of this process, many rollouts, median of 5, ratio against the native baseline
measured in the same run. The baseline is always countdown as ``bench_python.PyCountdown`` behind the trainer's
own env interface, which is what a user of that trainer writes natively.

- TRL environments mode (here): ``GRPOTrainer(environment_factory=...)`` keeps a pool of env instances and, per
  rollout, calls ``reset(**row)``, then the tool methods the model calls, then ``get_reward()``. Timed: exactly those
  calls, on the class from :func:`sandgym.integrations.trl.environment_factory` vs a plain TRL env class.
- verl (``_adapters_verl.py``): the whole ``run()`` of ``SandgymAgentLoop`` vs verl's ``ToolAgentLoop`` with
  ``BaseTool`` subclasses over ``PyCountdown``, the server manager scripted with pre-tokenized replies, so all
  but generation is timed (tokenizing the context included).
- verifiers (``_adapters_verifiers.py``): ``SandgymVerifiersEnv.run`` vs a native ``vf.Env`` over ``PyCountdown``,
  the agent side scripted, so the env's own per-turn work is timed (no harness, model or HTTP).

Each trainer runs only where its package imports (verl and verifiers live in their own virtualenvs, which see the
suite's packages); the others are skipped with a note. Run: ``python bench/bench_adapters.py`` (``--quick`` for a
short run, ``--trainers trl,verl,verifiers`` to choose), e.g. with the verl virtualenv's python for the verl rows.
Results go in docs/benchmarks.md ("Trainer adapters").
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import sandgym
from bench_python import PyCountdown
from sandgym.integrations.trl import environment_factory

TRAINERS = ("trl", "verl", "verifiers")
CALCS = ["(25 - 5) * 4", "100 / 4 + 3", "7 * 8 - 6"]


class NativeCountdown:
    """Countdown as a TRL user writes an environment class: tools are methods, the reward is the env's."""

    def __init__(self) -> None:
        """One env per instance."""
        self.env = PyCountdown()
        self.reward = 0.0

    def reset(self, seed: int = 0, **row: object) -> None:
        """Start the row's episode."""
        self.env.reset(seed)
        self.reward = 0.0

    def _call(self, name: str, expression: str) -> str:
        call = {"id": "c", "name": name, "arguments": json.dumps({"expression": expression})}
        messages, reward, _, _ = self.env.step({"content": "", "tool_calls": [call]})
        self.reward += reward
        return messages[0]["content"]

    def calc(self, expression: str) -> str:
        """Evaluate an expression."""
        return self._call("calc", expression)

    def submit(self, expression: str) -> str:
        """Submit the final expression."""
        return self._call("submit", expression)

    def get_reward(self) -> float:
        """The episode's reward."""
        return self.reward


def cpu_per_rollout(instance: object, rows: list[dict], repeats: int) -> float:
    """Median over ``repeats`` of the CPU seconds per rollout across ``rows``."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        for row in rows:
            instance.reset(**row)  # type: ignore[attr-defined]
            for expression in CALCS:
                instance.calc(expression=expression)  # type: ignore[attr-defined]
            instance.submit(expression=row["answer"])  # type: ignore[attr-defined]
            instance.get_reward()  # type: ignore[attr-defined]
        times.append((time.process_time() - start) / len(rows))
    return statistics.median(times)


def make_rows(n: int) -> list[dict]:
    """``n`` countdown-v0 episodes (seeds 0..n-1): the task, the expert's answer, the env's opening messages."""
    probe = sandgym.make("countdown-v0")
    rows = []
    for seed in range(n):
        observation, _ = probe.reset(seed=seed)
        call = probe.expert_action()["tool_calls"][0]
        answer = json.loads(call["arguments"])["expression"]
        rows.append(
            {
                "prompt": [{"role": "user", "content": "..."}],
                "task": json.dumps(probe.task),
                "seed": seed,
                "answer": answer,
                "opening": [{"role": m["role"], "content": m["content"]} for m in observation],
            }
        )
    return rows


def trl_row(row: dict) -> dict:
    """The row as TRL's dataset hands it to ``reset(**row)``."""
    return {key: row[key] for key in ("prompt", "task", "seed", "answer")}


def print_pair(title: str, native: float, ours: float, native_label: str, ours_label: str) -> None:
    """One trainer's two rows: CPU per rollout and the ratio to the native baseline."""
    print(title)
    print(f"  {native_label:<44}{native * 1e6:>9.1f} us CPU per rollout   1.0x")
    print(f"  {ours_label:<44}{ours * 1e6:>9.1f} us CPU per rollout {ours / native:>5.2f}x")


def bench_trl(rows: list[dict], repeats: int) -> None:
    """TRL environments mode: sandgym's environment_factory class vs the native class."""
    trl_rows = [trl_row(r) for r in rows]
    start = time.process_time()
    sandboxed = environment_factory("countdown-v0")()
    construct = time.process_time() - start
    native = cpu_per_rollout(NativeCountdown(), trl_rows, repeats)
    ours = cpu_per_rollout(sandboxed, trl_rows, repeats)
    title = (
        f"TRL environments mode, countdown, {len(rows)} rollouts (reset, 3 x calc, submit, get_reward), "
        f"median of {repeats}"
    )
    print_pair(title, native, ours, "native pure-Python env class (baseline)", "sandgym environment_factory class")
    print(f"  (making one sandgym instance, once per pool slot: {construct * 1e3:.1f} ms CPU)")


def bench_verl_rows(rows: list[dict], repeats: int) -> None:
    """verl: SandgymAgentLoop vs ToolAgentLoop with BaseTool subclasses (see ``_adapters_verl``)."""
    try:
        from _adapters_verl import bench_verl
    except ImportError as exc:
        print(f"verl: skipped, not importable here ({exc}); run with the verl virtualenv's python")
        return
    result = bench_verl(rows, CALCS, repeats)
    title = (
        f"verl agent loop, countdown, {len(rows)} rollouts (run() with the model scripted: 3 x calc, submit), "
        f"median of {repeats}"
    )
    print_pair(
        title,
        result["native"],
        result["sandgym"],
        "ToolAgentLoop + BaseTool tools (baseline)",
        "sandgym SandgymAgentLoop",
    )
    print(
        f"  (of which verl's Continuous Token builder, rendering and tokenizing the context: "
        f"{result['native_builder'] * 1e6:.1f} us native, {result['sandgym_builder'] * 1e6:.1f} us sandgym)"
    )


def bench_verifiers_rows(rows: list[dict], repeats: int) -> None:
    """verifiers: SandgymVerifiersEnv.run vs a native vf.Env (see ``_adapters_verifiers``)."""
    try:
        from _adapters_verifiers import bench_verifiers
    except ImportError as exc:
        print(f"verifiers: skipped, not importable here ({exc}); run with the verifiers virtualenv's python")
        return
    result = bench_verifiers(rows, CALCS, repeats)
    title = (
        f"verifiers 0.4 Env.run, countdown, {len(rows)} rollouts (agent side scripted: 3 x calc, submit), "
        f"median of {repeats}"
    )
    print_pair(
        title,
        result["native"],
        result["sandgym"],
        "native vf.Env over PyCountdown (baseline)",
        "sandgym SandgymVerifiersEnv",
    )


def main() -> None:
    """Measure each importable trainer's pair and print the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trainers", default=",".join(TRAINERS), help="comma-separated subset of trl,verl,verifiers")
    args = parser.parse_args()
    chosen = [t.strip() for t in args.trainers.split(",") if t.strip()]
    unknown = sorted(set(chosen) - set(TRAINERS))
    if unknown:
        parser.error(f"unknown trainers {unknown}; choose from {list(TRAINERS)}")
    # verl's loop tokenizes every turn (ms per rollout), so it gets fewer rollouts.
    n, n_verl, repeats = (200, 50, 3) if args.quick else (2000, 400, 5)
    rows = make_rows(n)
    if "trl" in chosen:
        bench_trl(rows, repeats)
    if "verl" in chosen:
        bench_verl_rows(rows[:n_verl], repeats)
    if "verifiers" in chosen:
        bench_verifiers_rows(rows, repeats)


if __name__ == "__main__":
    main()
