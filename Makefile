# The two commands of the README: `make quickstart` and `make test`.
# Both create .venv on first use; `make test` also fetches helm and kubectl into .tools/bin for
# the chart tests. Nothing else needs to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
HELM   ?= .tools/bin/helm
CRD     = helm/actsearch/crds/activationsearches.actsearch.io.yaml

.PHONY: quickstart test venv tools crds manifests clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# helm and kubectl for the chart tests (idempotent; see the script for where they come from)
tools:
	tools/fetch-helm.sh

quickstart: $(STAMP)
	$(VENV)/bin/actsearch-ctl space count --units 1
	$(VENV)/bin/actsearch-ctl space show 'sigmul(mul_beta(x), id(x))'
	$(VENV)/bin/actsearch-ctl space sample --units 2 --n 5 --seed 0

test: $(STAMP) tools
	HELM=$(HELM) $(PY) -m pytest

# Regenerate the CRD from the spec model; a test fails while the committed file is stale.
crds: $(STAMP)
	$(PY) -m orchestrator.crd > $(CRD)

# Regenerate manifests/ from the chart; a test fails while the committed files are stale.
manifests: $(STAMP) tools
	HELM=$(HELM) $(PY) tools/manifests.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .tools
