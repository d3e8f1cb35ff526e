# Weir's developer entry points. Each target installs what it needs first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LISTEN ?= 127.0.0.1:8080

.PHONY: run test typecheck e2e engine bench bench-peers clean

$(BIN)/gatewayctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Embedded Postgres in ./.weir/, the example config, one fresh demo key, then serve.
run: $(BIN)/gatewayctl
	$(BIN)/gatewayctl migrate
	$(BIN)/gatewayctl apply gateway.example.toml
	$(BIN)/gatewayctl keys create --user demo --name "quickstart-$$(date +%Y%m%d-%H%M%S)"
	$(BIN)/gatewayctl serve --config gateway.example.toml --listen $(LISTEN)

test: $(BIN)/gatewayctl
	$(BIN)/pytest

typecheck: $(BIN)/gatewayctl
	$(BIN)/mypy --strict src/weir

# The real inference engine (llama.cpp's server with a small Gemma 3 model) in
# its own virtual environment, on 127.0.0.1:8000, for `make run` to talk to.
engine: $(BIN)/gatewayctl
	$(BIN)/python e2e/engine.py serve

e2e: $(BIN)/gatewayctl
	$(BIN)/python e2e/run.py

bench: $(BIN)/gatewayctl
	$(BIN)/python -m bench

bench-peers: $(BIN)/gatewayctl
	$(BIN)/python -m bench --peers

clean:
	rm -rf $(VENV) .e2e .bench
