"""The paper's top functions and baselines, written in the grammar (examples/paper-functions.yaml),
evaluate through `actsearch-ctl space eval` to their closed forms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scipy.special import erf, expit

from orchestrator.cli import main

EXAMPLES = Path(__file__).parents[3] / "examples" / "paper-functions.yaml"
POINTS = [-4.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.9, 1.7, 3.3]

CLOSED_FORMS = {
    "x·σ(βx)": lambda x, b: x * expit(b * x),
    "max(x, σ(x))": lambda x, b: np.maximum(x, expit(x)),
    "cos(x) − x": lambda x, b: np.cos(x) - x,
    "min(x, sin(x))": lambda x, b: np.minimum(x, np.sin(x)),
    "(tan⁻¹(x))² − x": lambda x, b: np.arctan(x) ** 2 - x,
    "max(x, tanh(x))": lambda x, b: np.maximum(x, np.tanh(x)),
    "sinc(x) + x": lambda x, b: np.where(x == 0, 1.0, np.sin(x) / np.where(x == 0, 1, x)) + x,
    "x·(sinh⁻¹(x))²": lambda x, b: x * np.arcsinh(x) ** 2,
    "ReLU": lambda x, b: np.maximum(x, 0),
    "Swish-1": lambda x, b: x * expit(x),
    "Swish": lambda x, b: x * expit(b * x),
    "Softplus": lambda x, b: np.log1p(np.exp(x)),
    "GELU≈": lambda x, b: x * 0.5 * (1 + erf(x / np.sqrt(2))),
}


def _entries() -> list[dict]:
    data = yaml.safe_load(EXAMPLES.read_text())
    return data["top_functions"] + data["baselines"]


def test_the_example_file_lists_the_eight_top_functions() -> None:
    assert len(yaml.safe_load(EXAMPLES.read_text())["top_functions"]) == 8


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["name"])
@pytest.mark.parametrize("beta", [1.0, 0.6])
def test_space_eval_matches_the_closed_form(entry: dict, beta: float) -> None:
    beta = entry.get("beta", beta)
    args = ["space", "eval", entry["expr"], "--beta", str(beta), "--json"]
    for p in POINTS:
        args += ["--at", str(p)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    values = np.array(json.loads(result.output)["values"])
    expected = CLOSED_FORMS[entry["name"]](np.array(POINTS), beta)
    # GELU is matched by its approximation x·σ(1.702x), good to 0.02 on this range
    tol = 0.021 if entry["name"] == "GELU≈" else 1e-9
    np.testing.assert_allclose(values, expected, atol=tol, rtol=0 if tol > 1e-9 else 1e-9)
