from __future__ import annotations

import numpy as np
import pytest

from bench.parity import compare_output, compare_outputs


def test_identical_arrays_pass_with_zero_error() -> None:
    x = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    r = compare_output("y", x, x.copy(), rtol=1e-3, atol=1e-5, logits=True)
    assert r.passed and r.max_abs_err == 0 and r.cosine == pytest.approx(1.0)
    assert r.argmax_agreement == 1.0 and r.frac_beyond_tol == 0


def test_known_errors() -> None:
    expected = np.array([1.0, 2.0, 0.0, 4.0], dtype=np.float32)
    actual = np.array([1.0, 2.1, 1e-7, 4.0], dtype=np.float32)
    r = compare_output("y", actual, expected, rtol=1e-3, atol=1e-5)
    assert r.max_abs_err == pytest.approx(0.1, rel=1e-5)
    assert r.max_rel_err == pytest.approx(0.1, rel=1e-4)  # 1e-7 / 1e-6 epsilon = 0.1 as well
    assert r.mean_abs_err == pytest.approx((0.1 + 1e-7) / 4, rel=1e-4)
    assert r.frac_beyond_tol == pytest.approx(0.25)  # only 2.1 vs 2.0 is beyond
    assert not r.passed and "1 of 4 elements beyond" in r.problem


def test_argmax_agreement_fraction() -> None:
    expected = np.array([[0, 1, 0], [1, 0, 0]], dtype=np.float32)
    actual = np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32)
    r = compare_output("logits", actual, expected, rtol=1e-3, atol=1e-5, logits=True)
    assert r.argmax_agreement == 0.5


def test_nan_and_inf_fail_and_say_so() -> None:
    expected = np.zeros(4, dtype=np.float32)
    actual = np.array([np.nan, np.inf, 0, 0], dtype=np.float32)
    r = compare_output("y", actual, expected, rtol=1e-3, atol=1e-5)
    assert not r.passed and r.nan_count == 1 and r.inf_count == 1
    assert "1 NaN and 1 Inf" in r.problem


def test_wrong_shape_and_dtype_say_which() -> None:
    a = np.zeros((2, 10), np.float32)
    r = compare_output("out", a, np.zeros((2, 11), np.float32), 1e-3, 1e-5)
    assert not r.passed and "shape (2, 10), expected (2, 11)" in r.problem
    r = compare_output("out", a.astype(np.int64), a, 1e-3, 1e-5)
    assert not r.passed and "dtype int64, expected float32" in r.problem


def test_report_keeps_worst_over_batches_and_flags_missing_outputs() -> None:
    ref = [{"y": np.ones(3, np.float32)}, {"y": np.ones(3, np.float32)}]
    got = [{"y": np.ones(3, np.float32)}, {"y": np.array([1, 1, 1.5], np.float32)}]
    report = compare_outputs(got, ref, rtol=1e-3, atol=1e-5)
    assert not report.passed
    assert report.outputs[0].max_abs_err == pytest.approx(0.5)
    report = compare_outputs([{}], [{"y": np.ones(1)}], rtol=1e-3, atol=1e-5)
    assert not report.passed and report.problems == ["missing outputs: y"]
