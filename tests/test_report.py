"""The report's context numbers and the data drawn in its figures (issue 16, items 22, 23)."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest

from bregmod.activations import ReLU
from bregmod.certificate import certify, certify_deep
from bregmod.metrics import psnr
from bregmod.network import Dense, Sequential
from bregmod.problem import Inversion
from bregmod.regularizers import SquaredL2
from bregmod.report import (
    build_report,
    context,
    convergence_figure,
    format_summary,
    pseudo_inverse,
    reconstruction_figure,
)
from bregmod.spec import parse_spec

pytest.importorskip("matplotlib")

SPEC = textwrap.dedent("""\
    name = "tiny"
    [input]
    shape = [8, 8]
    [[layers]]
    type = "dense"
    out = 96
    activation = "relu"
    weights = { distribution = "normal", seed = 0 }
    bias = { distribution = "normal", seed = 1 }
    [data]
    ground_truth = { image = "phantom" }
    noise = { level = 0.02, where = "pre_activation", seed = 2 }
    [regularizer]
    expr = "0.5 * tv"
    [model]
    fidelity = "bregman"
    [solver]
    name = "admm"
    tol = 1e-5
    """)


@pytest.fixture(scope="module")
def solved():
    spec = parse_spec(SPEC)
    result = spec.problem.solve(**spec.solver.kwargs())
    assert result.status == "optimal"
    return spec, result


def test_pseudo_inverse_solves_the_data_term_on_the_active_rows(solved):
    spec, _ = solved
    u, rows = pseudo_inverse(spec)
    W, b, f = spec.network.W, spec.network.b, spec.data
    active = f > 0
    assert rows == int(active.sum())
    # independent truth: the minimum-norm solution by the SVD pseudo-inverse
    expected = np.linalg.pinv(W[active]) @ (f[active] - b[active])
    np.testing.assert_allclose(u.ravel(), expected, atol=1e-8)
    np.testing.assert_allclose(np.maximum(W[active] @ u.ravel() + b[active], 0), f[active],
                               atol=1e-8)  # 96 rows > 64 unknowns: fits the active rows exactly


def test_context_scores_the_baselines_like_the_result(solved):
    spec, result = solved
    entry = context(spec, result)
    truth = spec.ground_truth
    u, _ = pseudo_inverse(spec)
    assert entry["baselines"]["pseudo-inverse"]["psnr"] == pytest.approx(psnr(u, truth))
    assert entry["baselines"]["zero image"]["relative_error"] == pytest.approx(1.0)
    pre = spec.network.W @ truth.ravel() + spec.network.b
    f = spec.data
    # B_Ψ(f, x) = Φ(f) + Φ*(x) − f x with Φ = ½u² + ι_{u ≥ 0}, Φ*(x) = ½ max(x, 0)²
    relu_bregman = np.sum(0.5 * f**2 + 0.5 * np.maximum(pre, 0) ** 2 - f * pre)
    assert entry["misfit_at_truth"] == pytest.approx(relu_bregman)
    assert entry["half_data_norm_sq"] == pytest.approx(0.5 * np.sum(f**2))
    clean = spec.clean_data
    assert entry["relative_data_noise"] == pytest.approx(
        np.linalg.norm(f - clean) / np.linalg.norm(clean))
    assert entry["noise"]["level"] == 0.02


def test_summary_puts_the_numbers_in_context(solved):
    spec, result = solved
    report = build_report(spec, result)
    text = format_summary(report)
    baselines = report["context"]["baselines"]
    assert f"pseudo-inverse {baselines['pseudo-inverse']['psnr']:.2f} dB" in text
    assert f"zero image {baselines['zero image']['psnr']:.2f} dB" in text
    gap = report["bregman_gaps"][0]["value"]
    assert f"{gap / report['context']['half_data_norm_sq']:.2%} of ½‖f^δ‖²" in text
    assert f"at u†: {report['context']['misfit_at_truth']:.3e}" in text
    assert "gaussian, level 0.02 (relative) at the pre_activation" in text


def _images(ax):
    return ax.get_images()


def test_reconstruction_figure_shows_truth_and_estimate_unclipped_and_the_residual(solved):
    spec, result = solved
    fig = reconstruction_figure(spec, result)
    axes = [ax for ax in fig.axes if ax.get_title()]
    titles = [ax.get_title() for ax in axes]
    truth_ax, estimate_ax = axes[0], axes[1]
    u = np.asarray(result.u0).reshape(spec.input_shape)
    low = min(spec.ground_truth.min(), u.min())
    high = max(spec.ground_truth.max(), u.max())
    for ax, image in ((truth_ax, spec.ground_truth), (estimate_ax, u)):
        shown = _images(ax)[0]
        np.testing.assert_array_equal(shown.get_array(), image)
        assert shown.get_clim() == pytest.approx((low, high))  # one scale, nothing clipped
    error_ax = axes[titles.index("error u − u†")]
    np.testing.assert_allclose(_images(error_ax)[0].get_array(), u - spec.ground_truth)
    residual_ax = next(ax for ax in axes if ax.get_title().startswith("residual N(u) − f^δ"))
    residual = spec.network(u) - spec.data
    np.testing.assert_allclose(residual_ax.lines[0].get_ydata(), residual)
    data_ax = axes[titles.index("data f^δ")]
    assert len(data_ax.lines) == 1  # f^δ alone: no overlay hiding one curve under the other
    np.testing.assert_array_equal(data_ax.lines[0].get_ydata(), spec.data)


def test_convergence_figure_uses_log_scales_separates_parameters_and_keeps_legends_off(
        solved, tmp_path):
    spec, result = solved
    fig = convergence_figure(result)
    fig.savefig(tmp_path / "c.png")  # lays the figure out
    axes = [ax for ax in fig.axes if ax.axison]
    objective_ax, residual_ax, parameter_ax = axes
    F = np.asarray(result.history["objective"])
    expected = np.abs(F - F[-1]) / abs(F[-1])
    drawn = objective_ax.lines[0].get_ydata()
    np.testing.assert_allclose(drawn[:-1], expected[:-1])
    assert objective_ax.get_yscale() == "log" and residual_ax.get_yscale() == "log"
    assert residual_ax.get_title() == "relative residuals and gap"  # admm's duality gap
    residual_labels = [line.get_label() for line in residual_ax.lines]
    assert residual_labels[:2] == ["primal_residual", "dual_residual"]
    assert not any(label.startswith("rho") for label in residual_labels)
    assert {line.get_label() for line in parameter_ax.lines} == {"rho_data", "rho_reg"}
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in (residual_ax, parameter_ax):
        legend = ax.get_legend().get_window_extent(renderer)
        assert not legend.overlaps(ax.get_window_extent(renderer))  # below the axes


def test_factorised_certificates_are_reported_as_a_margin_not_an_eigenvalue(solved):
    # above dense_limit the verdict is a block LDLᵀ (λ_min > −tol verified); the summary and
    # report.json never present an estimate, or nothing, as "the smallest eigenvalue"
    spec, result = solved
    rng = np.random.default_rng(0)
    net = Sequential(Dense(rng.standard_normal((5, 3)), activation=ReLU()),
                     Dense(0.3 * rng.standard_normal((4, 5)), activation=ReLU()))
    lifted = certify(net.lift(), 1.0, 1.0, alpha=1e3, dense_limit=0)
    deep = certify_deep(Inversion(net, np.ones(4), 1e3 * SquaredL2(), fidelity="bregman").deep,
                        1e3 * SquaredL2(), dense_limit=0)
    assert lifted.certified and deep.certified
    for certificate, shown in ((lifted, "eigenvalue not computed"),
                               (deep, f"eigenvalue estimate {deep.min_eig:.3g}, an upper bound")):
        report = build_report(spec, dataclasses.replace(result, certificate=certificate))
        entry = report["certificate"]
        assert entry["factorised"] and "min_eig" not in entry
        assert entry["min_eig_estimate"] == certificate.min_eig
        text = format_summary(report)
        assert f"block LDLᵀ: smallest eigenvalue > −{certificate.tolerance:.2g}; {shown}" in text
    report = build_report(spec, result)
    assert not report["certificate"]["factorised"]
