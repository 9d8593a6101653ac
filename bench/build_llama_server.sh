#!/usr/bin/env bash
# Build llama.cpp's own server (llama-server) from the llama.cpp sources vendored in the
# llama-cpp-python source distribution that omnimini runs on, so both sides of bench/concurrency.py
# use the same llama.cpp. Only PyPI is needed. About 10 minutes on 2 cores; safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=build/peers
VER=$(.venv/bin/python -c "import llama_cpp; print(llama_cpp.__version__)")
mkdir -p "$DEST"
if [ -x "$DEST/llama-server" ]; then echo "$DEST/llama-server"; exit 0; fi
cd "$DEST"
[ -f "llama_cpp_python-$VER.tar.gz" ] || ../../.venv/bin/python -m pip download --quiet --no-deps \
    --no-binary :all: "llama-cpp-python==$VER" -d .
[ -d "llama_cpp_python-$VER" ] || tar xzf "llama_cpp_python-$VER.tar.gz"
cmake -S "llama_cpp_python-$VER/vendor/llama.cpp" -B build -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF > cmake.log
cmake --build build --target llama-server -j"$(nproc)" >> cmake.log
ln -sf build/bin/llama-server llama-server
echo "$DEST/llama-server"
