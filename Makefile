# Plait: the two commands of the README, and the checks CI runs.
# Works on a machine with only Python 3.11+, pip, git and make: uv is bootstrapped into .tools/.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
RUN := $(UV) run --frozen --no-sync

.PHONY: run examples test lint typecheck docs docs-check dist ci bench bench-api bench-cpu bench-memory bench-triggers bench-peers install dev clean

$(UV):
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

## install: the runtime (core, SDK and connector plugins) into .venv, exactly as locked
install: $(UV)
	@$(UV) sync --frozen --all-packages --no-dev --python $(PYTHON) --quiet

## dev: runtime plus test and lint tools
dev: $(UV)
	@$(UV) sync --frozen --all-packages --python $(PYTHON) --quiet

## run: install and serve the API (plait server local) with the example flows deployed, until Ctrl-C
run: install
	@$(RUN) plait server local --deploy examples

## examples: install and run every example flow once, locally (a quick check)
examples: install
	@$(RUN) plait run-examples examples

## test: install the test dependencies and run the whole suite (two pytest-xdist workers: each
## test keeps its own home, database schema, tables and ports, so they run side by side)
test: dev
	@$(RUN) pytest -q -n 2

lint: dev
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .

typecheck: dev
	@$(RUN) mypy --strict core/src sdk/src plugins/http/src plugins/db/src plugins/s3/src plugins/scripts/src

## docs: regenerate the generated reference docs and the plugin catalogue (registry/)
docs: dev
	@$(RUN) python -m plait.docgen docs/reference --blueprints docs/blueprints.md
	@$(RUN) python -m plait.catalogue registry

docs-check: dev
	@$(RUN) python -m plait.docgen docs/reference --blueprints docs/blueprints.md --check
	@$(RUN) python -m plait.catalogue registry --check

## dist: wheels and sdists of every distribution (SDK, core, each connector) into dist/
DIST ?= dist
dist: $(UV)
	@rm -rf $(DIST)
	@$(UV) build --all-packages --out-dir $(DIST) --quiet
	@ls $(DIST)

ci: test lint typecheck docs-check

bench: dev
	@$(RUN) python bench/run.py

## bench-api: the hub server's API under load next to a do-nothing aiohttp handler (docs/performance.md)
bench-api: dev
	@$(RUN) python bench/bench_api.py

## bench-cpu: the server's CPU per request (create, POST-to-SUCCESS, signed webhook), one client (docs/performance.md)
bench-cpu: dev
	@$(RUN) python bench/bench_cpu.py

## bench-memory: the idle server's resident memory, first start and restart (docs/performance.md)
bench-memory: dev
	@$(RUN) python bench/bench_memory.py

## bench-triggers: GitHub-signed webhooks for 30 s next to a do-nothing handler; 10,000 cron schedules (docs/performance.md)
bench-triggers: dev
	@$(RUN) python bench/bench_triggers.py

## bench-peers: Plait against Prefect 3 on the same workloads (installs Prefect into bench/peers/.venv-prefect)
bench-peers: dev
	@$(PYTHON) bench/peers/run.py

clean:
	rm -rf .venv $(TOOLS)
