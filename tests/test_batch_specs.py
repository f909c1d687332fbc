"""Specs that declare a batch of data items (noise copies, batched data files) and their reports."""

from __future__ import annotations

import numpy as np
import pytest

from bregmod.report import build_report, format_summary
from bregmod.spec import SpecError, parse_spec

SPEC = """\
[input]
shape = [4, 4]

[[layers]]
type = "dense"
out = 12
activation = "relu"
weights = { distribution = "normal", std = 1.0, seed = 0 }
bias = { distribution = "normal", std = 1.0, seed = 1 }

[data]
ground_truth = { image = "phantom" }
noise = { kind = "gaussian", level = 0.05, where = "pre_activation", seed = 2, copies = 3 }

[regularizer]
expr = "0.1 * tv"

[model]
fidelity = "bregman"

[solver]
name = "admm"
tol = 1e-6
"""


def test_noise_copies_are_independent_draws_of_the_declared_noise():
    spec = parse_spec(SPEC)
    single = parse_spec(SPEC.replace(", copies = 3", ""))
    assert spec.data.shape == (3, 12) and spec.problem.batch_size == 3
    assert single.data.shape == (12,) and single.problem.batch_size is None
    layer = spec.network
    pre = layer.W @ spec.ground_truth.ravel() + layer.b
    eps = np.random.default_rng(2).standard_normal((3, 12)) * spec.noise["std"]
    np.testing.assert_allclose(spec.data, np.maximum(pre + eps, 0.0))
    assert spec.noise["copies"] == 3 and single.noise["copies"] is None
    assert spec.noise["std"] == single.noise["std"]


def test_copies_must_be_positive():
    with pytest.raises(SpecError, match=r"data\.noise\.copies.*>= 1"):
        parse_spec(SPEC.replace("copies = 3", "copies = 0"))


def test_a_data_file_with_a_leading_axis_is_a_batch(tmp_path):
    items = np.abs(np.random.default_rng(0).standard_normal((5, 12)))
    np.save(tmp_path / "batch.npy", items)
    np.save(tmp_path / "one.npy", items[:1])
    text = SPEC.replace(
        'ground_truth = { image = "phantom" }\nnoise = { kind = "gaussian", level = 0.05, '
        'where = "pre_activation", seed = 2, copies = 3 }', 'file = "batch.npy"')
    spec = parse_spec(text, base_dir=tmp_path)
    assert spec.problem.batch_size == 5 and np.array_equal(spec.data, items)
    one = parse_spec(text.replace("batch.npy", "one.npy"), base_dir=tmp_path)
    assert one.problem.batch_size is None and one.data.shape == (12,)  # one item, as before


def test_the_report_of_a_batch_has_one_value_per_item():
    spec = parse_spec(SPEC)
    result = spec.problem.solve(**spec.solver.kwargs())
    report = build_report(spec, result)
    assert report["solver"]["statuses"] == ["optimal"] * 3
    np.testing.assert_allclose(report["objective"], result.objective)
    assert np.allclose(report["bregman_gaps"][0]["value"], result.bregman_gaps[:, 0])
    for i in range(3):  # each item against the one ground truth
        error = np.linalg.norm(result.u0[i] - spec.ground_truth) / np.linalg.norm(
            spec.ground_truth)
        assert report["metrics"]["relative_error"][i] == pytest.approx(error)
    summary = format_summary(report)
    low, high = min(result.objective), max(result.objective)
    assert f"objective       {low:.6e} to {high:.6e} over 3 items" in summary
    assert "[items: 3 optimal]" in summary
