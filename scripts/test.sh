#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs Rust and Python tests.
# Usage: bash scripts/test.sh   (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-wasip1

# Tests import the installed package (from outside the source tree), with the test extras.
python3 -m pip install --quiet --disable-pip-version-check ".[test]"

# Release profile: the dependencies pip just built for the extension are reused instead of rebuilt.
cargo test --release --quiet
# Guest envs: their own unit tests, natively (the envs workspace defaults to the wasm target).
host=$(rustc -vV | sed -n 's/^host: //p')
(cd envs && cargo test --quiet --target "$host")
# Lints are part of the suite: formatting, clippy with warnings as errors, ruff.
cargo fmt --all --check
(cd envs && cargo fmt --all --check)
cargo clippy --workspace --all-targets --quiet -- -D warnings
(cd envs && cargo clippy --workspace --all-targets --quiet --target "$host" -- -D warnings)
python3 -m ruff check python bench
python3 -m ruff format --check python bench
# The hand-written stub must match the compiled extension; the package must type-check.
python3 -m mypy.stubtest sandgym._core
python3 -m mypy -p sandgym

python3 -m pytest -q python/tests
