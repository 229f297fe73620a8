# quantsim: `make test` and `make demo` work from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test test-slow demo data bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check quantsim networks tests benchmarks

test: $(STAMP) lint
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Fashion-MNIST comes from Debian's dataset-fashion-mnist; without apt/root the demo says so
# and falls back to scikit-learn's digits.
data:
	@if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then \
		echo "Fashion-MNIST: installed (Debian package dataset-fashion-mnist)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"; \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
		echo "Could not install dataset-fashion-mnist; the demo will use the digits fallback"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
		echo "Could not install dataset-fashion-mnist; the demo will use the digits fallback"; \
	else \
		echo "Fashion-MNIST is not installed and apt needs root: run 'sudo apt-get install"; \
		echo "dataset-fashion-mnist' or set QUANTSIM_DATA; the demo uses the digits fallback."; \
	fi

demo: $(STAMP) data
	$(PY) -m quantsim.cli demo

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
