# meshwatch: the README's two commands are `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install tools format lint typecheck test test-unit demo bench clean

$(STAMP): pyproject.toml
	@python3 -c 'import ensurepip, venv' 2>/dev/null || \
		{ echo "meshwatch needs Python 3.11+ with venv: install python3-venv" >&2; exit 1; }
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

# mosquitto and victoria-metrics are real servers the tests start on free ports; chromium
# (with chromium-driver, from Debian) is the browser the console's tests drive.
tools:
	scripts/ensure-tools mosquitto victoria-metrics chromium

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lint: install typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --strict bench/benchcommon bench/ingest_bench.py bench/ingestbench \
		bench/models_bench.py bench/modelsbench bench/alerts_bench.py bench/alertsbench \
		bench/simulators_bench.py bench/simulatorsbench bench/alarms_bench.py bench/alarmsbench \
		bench/web_bench.py bench/webbench bench/history_bench.py bench/historybench \
		bench/hotpath_bench.py bench/hotpathbench

test: install tools lint
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

demo: install
	-scripts/ensure-tools mosquitto  # without it, the demo runs amqtt in-process
	$(BIN)/meshwatch demo

# alarms_bench.py judges the large fleet over 25 simulated hours: about 2 hours on 2 cores.
bench: install tools
	-$(PY) bench/ingest_bench.py
	-$(PY) bench/models_bench.py
	-$(PY) bench/simulators_bench.py
	-$(PY) bench/alarms_bench.py
	$(PY) bench/alerts_bench.py

clean:
	rm -rf $(VENV) .meshwatch test-output .pytest_cache .mypy_cache .ruff_cache *.egg-info
