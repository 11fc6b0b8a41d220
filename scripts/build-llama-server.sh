#!/usr/bin/env bash
# Builds llama.cpp's own server (`llama-server`) from the llama.cpp sources vendored in the pinned
# llama-cpp-python sdist (scripts/constraints.txt), so it is the same llama.cpp as the suite's Python binding,
# and prints the binary's path. The build is cached: a second run only prints the path.
#
#   SANDGYM_LLAMA_SERVER=$(bash scripts/build-llama-server.sh) python -m pytest -m slow python/tests/test_delethink_server.py
#   bash scripts/build-llama-server.sh --cached    # the path if it is built, else exit status 1 and no build
#
# scripts/test.sh runs that test when this script has been run on the machine (the binary is in the cache);
# it does not build the server itself: llama.cpp's `common` library and the server add ~12 CPU-minutes to the
# suite's llama.cpp compile. Static, for a generic x86-64 CPU (GGML_NATIVE=OFF, as the suite's wheel: see
# scripts/test.sh), no curl, OpenSSL or web UI. Needs a C++ compiler; cmake comes from PyPI when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^llama_cpp_python==//p' scripts/constraints.txt)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sandgym/llama-server-$version"
binary="$cache/llama-server"
if [ -x "$binary" ]; then
    echo "$binary"
    exit 0
fi
[ "${1:-}" != "--cached" ] || exit 1
mkdir -p "$cache"
work=$(mktemp -d -t sandgym-llama-server.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
    url=$(python3 - "$version" <<'EOF'
import json, sys, urllib.parse, urllib.request
index = "https://pypi.org/pypi/llama-cpp-python/json"  # the project's page: mirrors may not serve per-version ones
files = json.load(urllib.request.urlopen(index))["releases"][sys.argv[1]]
(sdist,) = [f["url"] for f in files if f["packagetype"] == "sdist"]
print(urllib.parse.urljoin(index, sdist))  # a mirror may give it relative to the page
EOF
)
    echo "[build-llama-server] llama-cpp-python $version sources: $url"
    python3 -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" "$url" "$work/src.tgz"
    tar -xzf "$work/src.tgz" -C "$work"
    if ! command -v cmake >/dev/null; then
        python3 -m venv "$work/cmake-venv"
        "$work/cmake-venv/bin/pip" install --quiet --disable-pip-version-check "cmake>=3.21,<5"
        export PATH="$work/cmake-venv/bin:$PATH"
    fi
    cmake -S "$work/llama_cpp_python-$version/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF
    cmake --build "$work/build" --target llama-server -j "$(nproc)"
    cp "$work/build/bin/llama-server" "$binary.tmp"
    mv "$binary.tmp" "$binary"
} >&2
echo "$binary"
