"""Hypothesis strategies for expression trees."""

from __future__ import annotations

from hypothesis import strategies as st

from orchestrator.space import BINARY_NAMES, UNARY_NAMES, Unit, X


def units_of(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(
        Unit,
        st.sampled_from(BINARY_NAMES),
        st.sampled_from(UNARY_NAMES),
        children,
        st.sampled_from(UNARY_NAMES),
        children,
    )


trees = st.recursive(st.just(X), units_of, max_leaves=8).filter(lambda n: n != X)
"""Any expression: a unit whose inputs are x or nested units (shared subtrees included)."""
