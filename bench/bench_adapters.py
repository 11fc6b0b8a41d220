"""Env-side CPU per rollout inside TRL's environments mode: sandgym's class vs a native pure-Python env class.

TRL's GRPOTrainer (``environment_factory``) keeps a pool of env instances and, per rollout, calls ``reset(**row)``,
then the tool methods the model calls, then ``get_reward()``. This measures exactly those calls, with the same
rollout on both sides (three ``calc`` calls and a ``submit``), in CPU seconds of this process: the sandboxed
env from :func:`sandgym.integrations.trl.environment_factory`, and countdown written as a plain TRL environment
class (``bench_python.PyCountdown`` behind the same methods), which is what a TRL user would write natively.

Run: ``python bench/bench_adapters.py`` (``--quick`` for a short run). Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import sandgym
from bench_python import PyCountdown
from sandgym.integrations.trl import environment_factory

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


def main() -> None:
    """Measure both classes and print the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, repeats = (200, 3) if args.quick else (2000, 5)

    probe = sandgym.make("countdown-v0")
    rows = []
    for seed in range(n):
        probe.reset(seed=seed)
        call = probe.expert_action()["tool_calls"][0]
        answer = json.loads(call["arguments"])["expression"]
        rows.append(
            {
                "prompt": [{"role": "user", "content": "..."}],
                "task": json.dumps(probe.task),
                "seed": seed,
                "answer": answer,
            }
        )

    start = time.process_time()
    sandboxed = environment_factory("countdown-v0")()
    construct = time.process_time() - start
    native = cpu_per_rollout(NativeCountdown(), rows, repeats)
    ours = cpu_per_rollout(sandboxed, rows, repeats)
    print(f"TRL environments mode, countdown, {n} rollouts (reset, 3 x calc, submit, get_reward), median of {repeats}")
    print(f"  native pure-Python env class (baseline)   {native * 1e6:>8.1f} us CPU per rollout   1.0x")
    print(f"  sandgym environment_factory class         {ours * 1e6:>8.1f} us CPU per rollout {ours / native:>5.2f}x")
    print(f"  (making one sandgym instance, once per pool slot: {construct * 1e3:.1f} ms CPU)")


if __name__ == "__main__":
    main()
