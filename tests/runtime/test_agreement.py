"""The agreement check: the same inf or nan at the same place agrees; a different special
value, or one against a number, does not; a reference that holds such values says so."""

from __future__ import annotations

import numpy as np

from tunesvc.evaluation.reference import compare

NAN, INF = np.nan, np.inf


def test_the_same_special_values_at_the_same_places_agree() -> None:
    values = np.array([1.0, NAN, INF, -INF], dtype="float32")
    agreement = compare([values.copy()], [values])
    assert agreement.ok and agreement.max_abs_error == 0.0
    assert "holds 3 inf/nan" in agreement.rule and "--input-value" in agreement.rule


def test_a_special_value_against_another_or_a_number_differs() -> None:
    expected = np.array([1.0, 2.0, INF])
    for got in (np.array([1.0, NAN, INF]), np.array([1.0, 2.0, -INF]), np.array([1.0, 2.0, 5.0])):
        agreement = compare([got], [expected])
        assert not agreement.ok and agreement.max_abs_error == INF


def test_the_tolerance_follows_the_finite_reference_values() -> None:
    expected = np.array([100.0, INF])
    assert compare([np.array([100.05, INF])], [expected]).ok
    assert not compare([np.array([100.2, INF])], [expected]).ok
    assert "inf/nan" not in compare([np.array([1.0])], [np.array([1.0])]).rule
