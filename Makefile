# AlphaTwin: every target creates/updates .venv/ from uv.lock by itself (Python 3.11+ and make only).
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
export NO_MKDOCS_2_WARNING := 1
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test test-all docs bench clean env cli-docs quality-docs models-docs catalog-docs strategy-docs reliability-docs

env: .venv/.synced

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

demo: env              ## the main job: the whole pipeline, offline, on the embedded sample
	.venv/bin/alphatwin demo

test: env              ## the default test suite (slow scale tests excluded)
	.venv/bin/pytest

test-all: env          ## everything, including @pytest.mark.slow
	.venv/bin/pytest -m ""

docs: env              ## the documentation site, strict
	.venv/bin/mkdocs build --strict --site-dir site

bench: env             ## benchmarks (print ratios and figures; no pass/fail)
	.venv/bin/python bench/ingest.py
	.venv/bin/python bench/validate.py
	.venv/bin/python bench/indicators.py
	.venv/bin/python bench/build.py
	.venv/bin/python bench/sweep.py
	.venv/bin/python bench/backtest.py --warehouse
	.venv/bin/python bench/report.py

clean:
	rm -rf .venv .tools site .pytest_cache docs/assets/javascripts/mermaid.min.js

cli-docs: env          ## regenerate docs/cli.md from the Typer app
	.venv/bin/typer alphatwin.cli.main utils docs --name alphatwin --title "CLI reference" --output docs/cli.md

quality-docs: env      ## regenerate the rules table in docs/quality.md from expectations/
	.venv/bin/python docs/gen_quality.py

models-docs: env       ## regenerate the lineage and column lists in docs/models.md
	.venv/bin/python docs/gen_models.py

catalog-docs: env      ## regenerate docs/catalog.md (every table of the model DAG) from the registry and a built warehouse
	.venv/bin/python docs/gen_catalog.py

strategy-docs: env     ## regenerate docs/strategies/ from the strategy registry
	.venv/bin/python docs/gen_strategies.py

reliability-docs: env  ## regenerate the counts in docs/reliability.md from the tests
	.venv/bin/python docs/gen_reliability.py
