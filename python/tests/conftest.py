"""Shared fixtures: paths of the test guests (built by cargo with the host, or built here on demand)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _guest_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("SANDGYM_GUEST_DIR"):
        dirs.append(Path(os.environ["SANDGYM_GUEST_DIR"]))
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    dirs.append(target / "wasm-guests" / "wasm32-wasip1" / "release")
    return dirs


@pytest.fixture(scope="session")
def guest_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for d in _guest_dirs():
        if (d / "hostile.wasm").is_file() and (d / "hostile_import.wasm").is_file():
            return d
    target = tmp_path_factory.mktemp("guests")
    subprocess.run(
        ["cargo", "build", "--release", "--target", "wasm32-wasip1", "--workspace", "--target-dir", str(target)],
        cwd=REPO / "envs",
        check=True,
    )
    return target / "wasm32-wasip1" / "release"


@pytest.fixture(scope="module")
def llm_example() -> ModuleType:
    """examples/llm_countdown.py as a module: its server launcher and run() are what the LLM tests drive."""
    spec = importlib.util.spec_from_file_location("llm_countdown", REPO / "examples" / "llm_countdown.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
