#!/usr/bin/env bash
# Build and run bench/ggml_row_invariance.c against the ggml that llama-cpp-python installed, with
# the headers from the same llama-cpp-python source distribution (fetched from PyPI as
# bench/build_llama_server.sh does). Needs a C compiler; takes seconds; loads no model.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=build/peers
VER=$(.venv/bin/python -c "import llama_cpp; print(llama_cpp.__version__)")
LIB=$(.venv/bin/python -c "import llama_cpp, os; print(os.path.join(os.path.dirname(llama_cpp.__file__), 'lib'))")
mkdir -p "$DEST"
if [ ! -d "$DEST/llama_cpp_python-$VER" ]; then
    [ -f "$DEST/llama_cpp_python-$VER.tar.gz" ] || .venv/bin/python -m pip download --quiet --no-deps \
        --no-binary :all: "llama-cpp-python==$VER" -d "$DEST"
    tar xzf "$DEST/llama_cpp_python-$VER.tar.gz" -C "$DEST"
fi
INC="$DEST/llama_cpp_python-$VER/vendor/llama.cpp/ggml/include"
cc -O2 -o "$DEST/ggml_row_invariance" bench/ggml_row_invariance.c -I"$INC" -L"$LIB" \
    -lggml -lggml-base -lggml-cpu -lm -Wl,-rpath,"$LIB"
"$DEST/ggml_row_invariance"
