"""The canonical text form: parse/print round-trips, and bad strings fail with the offending
token and its position (the parser never evaluates anything)."""

from __future__ import annotations

import pytest
from hypothesis import given

from orchestrator.echo import MAX_ECHO
from orchestrator.space import ParseError, Unit, X, parse, to_latex, to_math, to_text
from orchestrator.space.parse import MAX_DEPTH, MAX_LENGTH

from .strategies import trees


@given(trees)
def test_printing_a_parsed_canonical_string_gives_it_back(tree: Unit) -> None:
    text = to_text(tree)
    assert parse(text) == tree
    assert to_text(parse(text)) == text


def test_the_issue_examples_parse_to_the_expected_trees() -> None:
    swish = parse("sigmul(mul_beta(x), id(x))")
    assert swish == Unit("sigmul", "mul_beta", X, "id", X)
    atan_sq = parse("sub(square(max(atan(x), atan(x))), id(x))")
    assert atan_sq.input1 == Unit("max", "atan", X, "atan", X)


def test_whitespace_is_free_and_printing_restores_canonical_spacing() -> None:
    assert to_text(parse("  sigmul( mul_beta( x ),id(x) ) ")) == "sigmul(mul_beta(x), id(x))"


@pytest.mark.parametrize(
    ("text", "position", "token", "words"),
    [
        ("sigmul(mul_beta(x), idd(x))", 20, "idd", "unknown unary function 'idd'"),
        ("sin(id(x), id(x))", 0, "sin", "that is a unary function"),
        ("add(add(x), id(x))", 4, "add", "that is a binary function"),
        ("add(id(x), id(x)", 16, "", "expected ')'"),
        ("add(id(x), id(x)) x", 18, "x", "expected end of expression"),
        ("add(id(y), id(x))", 7, "y", "expected 'x' or a core unit"),
        ("add(id(x) + id(x))", 10, "+", "expected ','"),
        ("add(x, id(x))", 4, "x", "x must be wrapped"),
        ("__import__('os')", 0, "__import__", "unknown binary function"),
        ("", 0, "", "empty expression"),
    ],
)
def test_bad_strings_name_the_offending_token_and_position(
    text: str, position: int, token: str, words: str
) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    assert err.position == position
    assert err.token == token
    assert words in str(err)
    assert f"position {position}" in str(err)


def test_math_and_latex_renderings_read_like_the_paper() -> None:
    assert to_math(parse("sigmul(mul_beta(x), id(x))")) == "σ(β·x)·x"
    assert to_math(parse("sub(square(max(atan(x), atan(x))), id(x))")) == "tan⁻¹(x)² - x"
    assert to_math(parse("sub(cos(x), id(x))")) == "cos(x) - x"
    assert to_math(parse("sub(id(x), add_beta(x))")) == "x - (x + β)"
    assert to_math(parse("mul(neg(x), add_beta(x))")) == "(-x)·(x + β)"
    assert to_latex(parse("div(id(x), sin(x))")) == r"\frac{x}{\sin\left(x\right) + \epsilon}"


def _nested(depth: int) -> str:
    text = "x"
    for _ in range(depth):
        text = f"add(id({text}), id(x))"
    return text


def test_nesting_up_to_the_limit_parses_and_deeper_is_refused_naming_the_limit() -> None:
    assert to_text(parse(_nested(MAX_DEPTH))) == _nested(MAX_DEPTH)
    compact = _nested(250).replace(" ", "")  # 250 deep within the length limit
    assert len(compact) <= MAX_LENGTH
    for text in (_nested(MAX_DEPTH + 1), compact):
        with pytest.raises(ParseError, match=f"nest at most {MAX_DEPTH} deep") as info:
            parse(text)
        assert info.value.position == text.index("add", 7 * MAX_DEPTH)


def test_an_expression_nested_500_deep_is_a_parse_error_not_a_recursion_error() -> None:
    with pytest.raises(ParseError, match="at most"):
        parse(_nested(500))


def test_an_expression_longer_than_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(ParseError, match=f"too long: {MAX_LENGTH + 1} characters, at most {MAX_LENGTH}"):
        parse("x" * (MAX_LENGTH + 1))


@pytest.mark.parametrize("text", ["q" * 1_000_000, "add(id(x), " + "q" * 1_000_000 + ")",
                                  "add(id(x), id(x))" + " " * 2000 + "junk"])
def test_an_error_quotes_a_bounded_part_of_a_huge_expression(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert len(str(info.value)) < 400
    pointer = info.value.pointer()
    assert len(pointer) < 2 * MAX_ECHO + 10
    line, caret = pointer.split("\n")
    if info.value.token:  # the caret stands under the offending token's first character
        assert line[len(caret) - 1] == info.value.token[0]
