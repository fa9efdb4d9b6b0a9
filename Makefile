# The two commands of the README: `make quickstart` and `make test`.
# Both create .venv on first use; nothing else needs to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: quickstart test venv clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/actsearch-ctl space count --units 1
	$(VENV)/bin/actsearch-ctl space show 'sigmul(mul_beta(x), id(x))'
	$(VENV)/bin/actsearch-ctl space sample --units 2 --n 5 --seed 0

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
