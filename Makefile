# The two commands of the README: `make quickstart` and `make test`.
# Both create .venv on first use; `make test` also fetches helm and kubectl into .tools/bin and
# installs checkov into .tools/checkov for the chart tests, and runs `make lint` first. Nothing
# else needs to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
HELM   ?= .tools/bin/helm
CRD     = helm/actsearch/crds/activationsearches.actsearch.io.yaml

.PHONY: quickstart quickstart-digits test lint venv tools crds manifests clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# helm and kubectl for the chart tests (idempotent; see the script for where they come from),
# and checkov, the policy suite of tests/chart/test_checkov.py, in a venv of its own (pinned in
# tools/checkov-constraints.txt)
tools:
	tools/fetch-helm.sh
	PYTHON=$(PYTHON) tools/install-checkov.sh

# A real PPO search on CPU (examples/quickstart.yaml, Fashion-MNIST); each run starts the search
# afresh, though functions trained by an earlier run are reused from .actsearch/mlflow.db (cache
# hits; remove .actsearch to train everything again). quickstart-digits: the same on scikit-learn's digits, for machines without Fashion-MNIST;
# quickstart runs it, saying so, where Fashion-MNIST is neither installed nor downloadable.
quickstart: $(STAMP)
	@if $(PY) -m orchestrator.trainer.available fashion_mnist; then \
	  rm -rf .actsearch/quickstart && $(VENV)/bin/actsearch-ctl run examples/quickstart.yaml; \
	else \
	  echo "make quickstart: Fashion-MNIST is not at hand, so the same search runs on scikit-learn's digits (examples/quickstart-digits.yaml), whose leaderboard is mostly noise"; \
	  $(MAKE) --no-print-directory quickstart-digits; \
	fi

quickstart-digits: $(STAMP)
	rm -rf .actsearch/quickstart-digits
	$(VENV)/bin/actsearch-ctl run examples/quickstart-digits.yaml

test: $(STAMP) tools lint
	HELM=$(HELM) $(PY) -m pytest

# The rules CI checks besides the tests (configuration in pyproject.toml): ruff, mypy (strict on
# the space, the contract and the search loop), and the import contracts of the layout.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Regenerate the CRD from the spec model; a test fails while the committed file is stale.
crds: $(STAMP)
	$(PY) -m orchestrator.cluster.crd > $(CRD)

# Regenerate manifests/ from the chart; a test fails while the committed files are stale.
manifests: $(STAMP) tools
	HELM=$(HELM) $(PY) tools/manifests.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .tools
