"""``sandgym serve`` under load: steps/s and step latency at 1, 8 and 32 concurrent WebSocket sessions.

The baseline, measured in the same run against the same client: OpenEnv 0.10's own server (``create_app``)
hosting countdown written in plain Python (``bench_python.PyCountdown``, the way an OpenEnv env is written: an
``Environment`` subclass with pydantic action and observation models). Both servers run in their own process
under uvicorn; one client process (asyncio, ``websockets``) keeps N sessions busy, each playing episodes of
``reset``, three ``calc`` steps and a ``submit``, all with the same action payloads. Latency is one step's
round trip (send to reply) as the client sees it; steps/s counts step messages over the run's wall time.

Run: ``python bench/bench_serve.py`` (``--quick`` for a short run); needs openenv and websockets
(``pip install --no-deps openenv==0.10.0`` plus its client dependencies; see docs/benchmarks.md).
Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CALCS = ["(25 - 5) * 4", "100 / 4 + 3", "7 * 8 - 6"]
SESSIONS = (1, 8, 32)


def tool_action(name: str, expression: str) -> dict[str, Any]:
    """The step payload both servers get: a structured tool call, as a trainer with a tool parser sends it."""
    return {"message": "", "tool_calls": [{"name": name, "arguments": {"expression": expression}}]}


# --- the baseline server: OpenEnv's own, hosting pure-Python countdown ---


def run_baseline_server(port: int, max_sessions: int) -> None:
    """Serve ``PyCountdown`` with OpenEnv's ``create_app`` on ``port`` (runs in a child process)."""
    import uvicorn
    from bench_python import PyCountdown
    from openenv.core.env_server.http_server import create_app
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, Observation, State

    class CountdownAction(Action):
        """The same action shape as sandgym serve's."""

        message: str
        tool_calls: list[dict[str, Any]] | None = None

    class CountdownObservation(Observation):
        """Tool results as chat messages."""

        messages: list[dict[str, Any]]

    class PyCountdownEnvironment(Environment):
        """Countdown as an OpenEnv environment."""

        SUPPORTS_CONCURRENT_SESSIONS = True

        def __init__(self) -> None:
            super().__init__()
            self.env = PyCountdown()
            self._state = State()

        def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> Observation:
            messages = self.env.reset(seed or 0)
            self._state = State(episode_id=episode_id or os.urandom(8).hex(), step_count=0)
            return CountdownObservation(messages=messages)

        def step(self, action: Action, timeout_s: float | None = None, **kwargs: Any) -> Observation:
            assert isinstance(action, CountdownAction)
            calls = [
                {"id": f"call_{i}", "name": call["name"], "arguments": json.dumps(call["arguments"])}
                for i, call in enumerate(action.tool_calls or [])
            ]
            messages, reward, terminated, truncated = self.env.step({"content": action.message, "tool_calls": calls})
            self._state.step_count += 1
            return CountdownObservation(messages=messages, reward=reward, done=terminated or truncated)

        @property
        def state(self) -> State:
            return self._state

    app = create_app(PyCountdownEnvironment, CountdownAction, CountdownObservation, max_concurrent_envs=max_sessions)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="auto")


# --- load ---


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    """Start a server and wait until it answers ``/health``."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"server {command} exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
            return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server {command} never answered /health")


async def session(url: str, episodes: int, seed: int, latencies: list[float]) -> int:
    """Play ``episodes`` episodes over one WebSocket; step round trips go to ``latencies``; returns steps."""
    import websockets

    steps = 0
    async with websockets.connect(url, max_size=None) as ws:

        async def ask(message: dict[str, Any]) -> dict[str, Any]:
            await ws.send(json.dumps(message))
            reply = json.loads(await ws.recv())
            if reply["type"] == "error":
                raise RuntimeError(f"server error: {reply['data']}")
            return dict(reply)

        for episode in range(episodes):
            await ask({"type": "reset", "data": {"seed": seed * 100_000 + episode}})
            for name, expression in [("calc", e) for e in CALCS] + [("submit", "1 + 2")]:
                start = time.perf_counter()
                await ask({"type": "step", "data": tool_action(name, expression)})
                latencies.append(time.perf_counter() - start)
                steps += 1
    return steps


async def load(url: str, sessions: int, episodes: int, latencies: list[float]) -> float:
    """``sessions`` concurrent sessions of ``episodes`` episodes each: steps/s; step round trips to ``latencies``."""
    await asyncio.gather(*(session(url, 1, 10_000 + i, []) for i in range(sessions)))  # warm-up
    start = time.perf_counter()
    steps = sum(await asyncio.gather(*(session(url, episodes, i, latencies) for i in range(sessions))))
    return steps / (time.perf_counter() - start)


def measure(urls: list[str], sessions: int, episodes: int, rounds: int) -> list[tuple[float, float, float]]:
    """(median steps/s, p50 s, p99 s) per server, the servers taking turns round by round.

    Taking turns and the median over rounds keep a burst of other load on the machine from landing on one
    server only.
    """
    rates: list[list[float]] = [[] for _ in urls]
    latencies: list[list[float]] = [[] for _ in urls]
    for _ in range(rounds):
        for i, url in enumerate(urls):
            rates[i].append(asyncio.run(load(url, sessions, episodes, latencies[i])))
    out = []
    for rate, lat in zip(rates, latencies, strict=True):
        cuts = statistics.quantiles(lat, n=100, method="inclusive")
        out.append((statistics.median(rate), cuts[49], cuts[98]))
    return out


def main() -> None:
    """Measure both servers at each concurrency and print the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        run_baseline_server(args.baseline_server, max(SESSIONS))
        return
    total_episodes, rounds = (100, 1) if args.quick else (400, 5)

    def sandgym_serve(*extra: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        command = [sys.executable, "-m", "sandgym.cli", "serve", "--env", "countdown-v0", "--port", str(port)]
        command += ["--max-sessions", str(max(SESSIONS)), "--log-level", "warning", *extra]
        return start(command, port), port

    base_port = free_port()
    bench_dir = Path(__file__).resolve().parent
    baseline = start(
        [sys.executable, str(bench_dir / "bench_serve.py"), "--baseline-server", str(base_port)], base_port
    )
    ours, ours_port = sandgym_serve()
    inline, inline_port = sandgym_serve("--threads", "0")
    try:
        print(
            f"WebSocket sessions, countdown episodes (reset, 3 x calc, submit); {total_episodes} episodes per "
            f"round, {rounds} rounds taking turns; median steps/s, p50/p99 over all rounds' steps"
        )
        print(f"{'sessions':>8}  {'server':<34} {'steps/s':>9} {'p50 ms':>8} {'p99 ms':>8}  {'steps/s vs base':>15}")
        for sessions in SESSIONS:
            episodes = max(1, total_episodes // sessions)
            urls = [f"ws://127.0.0.1:{port}/ws" for port in (base_port, ours_port, inline_port)]
            base, mine, loop = measure(urls, sessions, episodes, rounds)
            rows = (
                ("OpenEnv create_app + PyCountdown", base),
                ("sandgym serve (threads, default)", mine),
                ("sandgym serve --threads 0", loop),
            )
            for name, (rate, p50, p99) in rows:
                ratio = rate / base[0]
                print(f"{sessions:>8}  {name:<34} {rate:>9.0f} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f}  {ratio:>14.2f}x")
    finally:
        for process in (ours, inline, baseline):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
