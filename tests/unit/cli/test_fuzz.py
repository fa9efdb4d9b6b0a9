"""No input, however malformed, gets a traceback out of ``actsearch-ctl``: random expressions for
``space show`` and random spec files for ``run``, in-process with click's CliRunner and
``catch_exceptions=False``, so any exception other than click's own exit fails the test. Each run
ends with a documented exit code (``orchestrator.cli.errors``) and a bounded message.

A spec that happens to be valid stops where the controller would be built (after the spec is
read, validated and its backend checked, all real code), so the fuzz trains nothing and creates
no MLflow database; the endpoints a spec names are tested in tests/unit/test_tracking_endpoint.py
and tests/integration/test_bad_endpoints.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from orchestrator.cli.errors import EXPECTED_FAILURE, USAGE_ERROR
from orchestrator.space import BINARY_NAMES, UNARY_NAMES
from orchestrator.spec import SearchSpec

EXIT_CODES = {0, EXPECTED_FAILURE, USAGE_ERROR}
MAX_OUTPUT = 6_000  # characters: a handful of one-line problems, never the input echoed whole

_words = st.sampled_from([*BINARY_NAMES, *UNARY_NAMES, "x", "(", ")", ",", " ", "y", "1", "\n", "(("])
expressions = st.one_of(
    st.text(max_size=200),
    st.lists(_words, max_size=60).map("".join),
    st.integers(0, 600).map(lambda n: "add(id(" * n + "x" + "), id(x))" * n),  # deep nesting
    st.integers(1, 3).map(lambda n: "sin" * (400_000 * n)),  # megabytes of one token
)

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
# top-level fields of a spec with random values; tracking and storage left out (they would
# name servers to wait for), backend kept (its kind is checked before anything starts)
_fields = st.sampled_from(sorted(set(SearchSpec.model_fields) - {"tracking", "storage"}))
_structured = st.dictionaries(st.one_of(_fields, st.text(max_size=8)), _values, max_size=6).map(
    lambda d: yaml.safe_dump(d, allow_unicode=True).encode())
spec_files = st.one_of(
    st.binary(max_size=300),  # non-UTF-8 included
    st.text(max_size=300).map(str.encode),
    _structured,
    st.builds(lambda d, name: yaml.safe_dump({"name": name, **d}).encode(),
              st.dictionaries(_fields, _values, max_size=4), st.sampled_from(["fz", "Fz", "", "a" * 50])),
    st.sampled_from([b"name: a\nname: b\n", b"[" * 1000, b"a: &x [*x]\n", b"name: fz\ngeneration: 1e8\n",
                     b"name: fz\nscreen: {domain: .inf}\n", b"\xff\xfe" + "name: fz".encode("utf-16-le")]),
)


def _check(result: object, args: list[str]) -> None:
    code = result.exit_code  # type: ignore[attr-defined]
    output = result.output  # type: ignore[attr-defined]
    assert code in EXIT_CODES, (args[:2], code, output[-2000:])
    assert "Traceback" not in output
    assert len(output) <= MAX_OUTPUT, (args[:2], len(output), output[:500])


@settings(max_examples=100, deadline=None)
@given(expressions)
def test_space_show_answers_any_text_with_a_documented_exit_code_and_a_bounded_message(text: str) -> None:
    args = ["space", "show", "--", text]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    _check(result, args)
    if result.exit_code != 0:
        assert "Error" in result.output


class _StopBeforeTheSearch(click.exceptions.Exit):
    pass


@pytest.fixture
def no_search(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A valid spec stops where its controller would be built: exit 0, nothing created."""
    from orchestrator import embedded
    from orchestrator.spec import check_backend

    def stop(spec: SearchSpec, *args: object, **kwargs: object) -> None:
        check_backend(spec.backend.kind, "local", f"search {spec.name!r}")
        raise _StopBeforeTheSearch(0)

    monkeypatch.setattr(embedded, "build_controller", stop)
    monkeypatch.setenv("ACTSEARCH_TRACKING_TIMEOUT", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield


def test_run_answers_any_spec_file_with_a_documented_exit_code_and_a_bounded_message(
        tmp_path: Path, no_search: None) -> None:
    counter = iter(range(10**9))

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec_files)
    def one(content: bytes) -> None:
        n = next(counter)
        path = tmp_path / f"spec-{n}.yaml"
        path.write_bytes(content)
        args = ["run", str(path), "--workdir", str(tmp_path / f"work-{n}"), "--quiet"]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        _check(result, args)
        if result.exit_code != 0:
            assert result.output.startswith(("Error", "Usage")), result.output[:300]

    one()


def test_the_fuzz_reaches_both_outcomes(tmp_path: Path, no_search: None) -> None:
    """The fuzz is not vacuous: a valid spec gets as far as the search, a bad one is refused."""
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps({"name": "fz", "budget": {"trials": 1}}))
    result = CliRunner().invoke(main, ["run", str(good), "--workdir", str(tmp_path / "w"), "--quiet"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    kube = tmp_path / "kube.yaml"
    kube.write_text(json.dumps({"name": "fz", "backend": {"kind": "kubernetes"}}))
    result = CliRunner().invoke(main, ["run", str(kube), "--quiet"], catch_exceptions=False)
    assert result.exit_code == EXPECTED_FAILURE and "actsearch-ctl submit" in result.output
    shown = CliRunner().invoke(main, ["space", "show", "--", "add(id(x), id(x))"], catch_exceptions=False)
    assert shown.exit_code == 0 and shown.output.startswith("canonical")
