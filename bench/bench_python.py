"""Python-side benchmark: sandgym's VecEnv vs a straightforward pure-Python countdown env.

The Python env below is written the way Python gyms usually are: a class per env, JSON arguments parsed
with ``json``, the expression evaluated with ``ast`` and ``Fraction``, one env stepped at a time. Both sides
get the same tool call on every step and return the same kind of observation (tool message dicts).

Run: ``python bench/bench_python.py`` (``--quick`` for a short run). Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

import sandgym

ACTION = {
    "content": "",
    "tool_calls": [{"id": "call_0", "name": "calc", "arguments": json.dumps({"expression": "(25 - 5) * 4 + 7 / 7"})}],
}
ACTION_TEXT = '<tool_call>{"name": "calc", "arguments": {"expression": "(25 - 5) * 4 + 7 / 7"}}</tool_call>'


class PyCountdown:
    """Countdown in plain Python: ``calc`` evaluates, ``submit`` verifies."""

    def __init__(self, max_turns: int = 1000) -> None:
        self.max_turns = max_turns

    def reset(self, seed: int) -> list[dict]:
        rng = random.Random(seed)
        self.numbers = [rng.randint(1, 100) for _ in range(4)]
        self.target = rng.randint(10, 999)
        self.turns = 0
        return [
            {"role": "system", "content": "You are playing Countdown."},
            {"role": "user", "content": f"Numbers: {self.numbers}. Target: {self.target}."},
        ]

    def _eval(self, node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return self._eval(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left), self._eval(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                if right == 0:
                    raise ValueError("division by zero")
                return left / right
        raise ValueError("unsupported expression")

    def step(self, action: dict) -> tuple[list[dict], float, bool, bool]:
        self.turns += 1
        messages = []
        reward, terminated = 0.0, False
        for call in action.get("tool_calls", []):
            try:
                args = json.loads(call["arguments"])
                value = self._eval(ast.parse(args["expression"], mode="eval"))
                if call["name"] == "submit":
                    terminated = True
                    reward = float(value == self.target)
                content = str(value)
            except (ValueError, KeyError, SyntaxError, json.JSONDecodeError) as err:
                content = f"Error: {err}"
            messages.append({"role": "tool", "tool_call_id": call["id"], "name": call["name"], "content": content})
        return messages, reward, terminated, self.turns >= self.max_turns


def rate(fn, steps: int, repeats: int, setup=lambda: None) -> float:
    """Steps/s of ``fn`` (median of ``repeats``); ``setup`` runs untimed before each repeat."""
    times = []
    for _ in range(repeats):
        setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return steps / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, rounds, repeats = (64, 20, 3) if args.quick else (256, 100, 5)
    steps = n * rounds
    config = {"max_turns": 1000}

    python_envs = [PyCountdown() for _ in range(n)]
    for i, env in enumerate(python_envs):
        env.reset(i)

    def python_loop() -> None:
        for _ in range(rounds):
            for env in python_envs:
                env.step(ACTION)

    vec = sandgym.VecEnv("countdown-v0", n, config)

    def fresh_episodes() -> None:
        # Every repeat starts new episodes: steps past `max_turns` would only measure the reset-needed error.
        vec.reset(seed=0)

    def vec_gymnasium() -> None:
        for _ in range(rounds):
            vec.step([ACTION_TEXT] * n)

    def vec_dicts() -> None:
        for _ in range(rounds):
            vec.step_slots([ACTION] * n)

    def vec_text() -> None:
        for _ in range(rounds):
            vec.step_slots([ACTION_TEXT] * n)

    def vec_in_rust() -> None:
        vec.run_steps(ACTION, rounds)

    py = rate(python_loop, steps, repeats)
    results = {
        "VecEnv.step (Gymnasium, model text)": rate(vec_gymnasium, steps, repeats, fresh_episodes),
        "VecEnv.step_slots(model text)": rate(vec_text, steps, repeats, fresh_episodes),
        "VecEnv.step_slots(action dicts)": rate(vec_dicts, steps, repeats, fresh_episodes),
        "VecEnv.run_steps (loop in Rust)": rate(vec_in_rust, steps, repeats, fresh_episodes),
    }
    print(f"countdown, {n} envs x {rounds} rounds, median of {repeats}")
    print(f"  pure-Python env (baseline)           {py:>12.0f} steps/s   1.0x")
    for name, value in results.items():
        print(f"  {name:<36} {value:>12.0f} steps/s {value / py:>6.1f}x")
    print()
    startup()


def startup() -> None:
    """Time a fresh process making its first env: compiling the module vs loading it from the disk cache."""
    code = "import sandgym, time; t = time.perf_counter(); sandgym.make('countdown-v0'); print(time.perf_counter() - t)"
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SANDGYM_CACHE_DIR=cache)
        times = []
        for _ in range(4):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            times.append(float(out.stdout))
    cold, warm = times[0], statistics.median(times[1:])
    print("first env in a new process (sandgym.make, countdown-v0):")
    print(f"  empty module cache (compile)      {cold * 1e3:>9.1f} ms   1.0x")
    print(f"  warm module cache (deserialize)   {warm * 1e3:>9.1f} ms {cold / warm:>6.1f}x faster")


if __name__ == "__main__":
    main()
