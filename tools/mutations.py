"""Mutation check: does the test suite notice plausible one-line bugs?

Each entry of :data:`MUTATIONS` is one deliberate bug — a file, an exact piece of its text, the
mutated text and the tests that must notice it. The runner copies the repository's files (the
tracked ones and the untracked ones git does not ignore) to a scratch directory once, and for
each mutation: replaces the text there (it must occur exactly once, else the list is stale),
runs ``python -m pytest -x -q`` on the listed tests against the scratch copy, and restores the
file. The working tree is never written; the scratch copy is removed at the end.

A mutation is *killed* when a test fails (or collection fails, or the run times out) and
*survives* when every listed test passes. A survivor is accepted only when its entry says why
(``survives=``: an equivalent mutation or a known gap); an unexplained survivor, a stale entry
or a test run that collected nothing makes the exit status 1.

Usage (from the repository root, with the dev environment active)::

    python tools/mutations.py                      # every mutation
    python tools/mutations.py --only dct-laplacian # one (repeatable)
    python tools/mutations.py --list               # names and what they model
    python tools/mutations.py --markdown           # the result as a Markdown table

Run it by hand after large changes (a full run takes minutes: one pytest run per mutation)
and record the result in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Seconds one mutation's test run may take; longer counts as killed (a hang is noticed).
TIMEOUT = 600


@dataclass(frozen=True)
class Mutation:
    """One deliberate one-line bug and the tests that must notice it.

    Attributes
    ----------
    name : str
        Short identifier (``--only NAME``).
    path : str
        File, relative to the repository root (if the text moved verbatim to another module
        of the package, the runner finds it there: :func:`locate`).
    original, mutated : str
        The exact text replaced (it must occur exactly once in the file) and its replacement.
    tests : tuple of str
        pytest arguments: test files or node ids (``tests/test_x.py::test_y``), run with the
        default marker selection unless ``slow`` is set.
    models : str
        The bug this models.
    slow : bool
        Also run the listed tests marked ``slow``.
    survives : str or None
        Why the mutation is expected to survive (an accepted gap); None: it must be killed.
    """

    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    models: str
    slow: bool = False
    survives: str | None = None


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "relu-phi-conj-half",
        "bregmod/activations.py",
        "    def _phi_conj(self, x):\n        return 0.5 * np.maximum(x, 0.0) ** 2\n",
        "    def _phi_conj(self, x):\n        return np.maximum(x, 0.0) ** 2\n",
        ("tests/test_activations.py",),
        "ReLU's Φ*(x) = ½ max(x, 0)² without its ½",
    ),
    Mutation(
        "relu-bregman-term",
        "bregmod/activations.py",
        "        return 0.5 * (y - np.maximum(x, 0.0)) ** 2 + np.maximum(-x, 0.0) * y",
        "        return 0.5 * (y - np.maximum(x, 0.0)) ** 2",
        ("tests/test_activations.py",),
        "ReLU's Bregman penalty without its max(−x, 0)·y term",
    ),
    Mutation(
        "gradient2d-adjoint-shift",
        "bregmod/operators.py",
        "        R[:, 1:, :] += px",
        "        R[:, :-1, :] += px",
        ("tests/test_operators.py",),
        "Gradient2D's adjoint with the forward difference's second term shifted",
    ),
    Mutation(
        "paper-q-sign",
        "bregmod/certificate.py",
        "- self.sym_M - np.eye(self.E_0.size) / rho\n",
        "- self.sym_M - np.eye(self.E_0.size) / (2 * rho)\n",
        ("tests/test_certificate.py",),
        "the paper certificate's Q with −I/(2ρ) instead of −I/ρ",
    ),
    Mutation(
        "chain-z-margin",
        "bregmod/certificate.py",
        "        stages = [_Stage(a, B, W, 1.0 + shift) for a, B, W in self.links]",
        "        stages = [_Stage(a, B, W, 1.0) for a, B, W in self.links]",
        ("tests/test_certificate.py",),
        "the factorised exact check shifting u but not z by tol (a margin smaller than tol)",
    ),
    Mutation(
        "chain-residual-carry",
        "bregmod/certificate.py",
        "            P += a * a * P_mat",
        "            pass",
        ("tests/test_certificate.py",),
        "the chain elimination forgetting the carried state of a residual link (a² P_j)",
    ),
    Mutation(
        "tolerance-alpha-scale",
        "bregmod/certificate.py",
        'certified = bool(min_eig >= -common["tolerance"])',
        'certified = bool(min_eig >= -common["tolerance"] * max(alpha, 1.0))',
        ("tests/test_certificate.py",),
        "the dense check's tolerance growing with J's α again, so a huge α certifies a form "
        "that is indefinite where u₀ = 0 (α has no effect there)",
    ),
    Mutation(
        "deep-tolerance-alpha-scale",
        "bregmod/certificate.py",
        "    scale = 1.0 + 2 * max(norms, default=0.0)",
        "    scale = max(alpha, 1.0) + 2 * max(norms, default=0.0)",
        ("tests/test_deep_certificate.py",),
        "the deep certificate's tolerance scaled with J's α, so a huge α passes an indefinite "
        "hidden block",
    ),
    Mutation(
        "deep-weights-no-sqrt",
        "bregmod/certificate.py",
        "math.sqrt(gammas[l] / gammas[l - 1])",
        "gammas[l] / gammas[l - 1]",
        ("tests/test_deep_certificate.py",),
        "the congruence of a weighted deep energy rescaling W_l by γ_l/γ_{l−1} instead of its "
        "square root",
    ),
    Mutation(
        "cvxpy-alpha-twice",
        "bregmod/backends/cvxpy_backend.py",
        "        terms.append(problem.reg.cvx_remainder(u_vars[0]))",
        "        terms.append(problem.reg.cvx(u_vars[0]))",
        ("tests/test_cvxpy_backend.py",),
        "the exact backend counting J's α twice (in the certified H₀ and again in J)",
    ),
    Mutation(
        "dct-laplacian",
        "bregmod/solvers/_dct.py",
        "        rows = 4.0 * np.sin(np.pi * np.arange(H) / (2 * H)) ** 2",
        "        rows = 3.8 * np.sin(np.pi * np.arange(H) / (2 * H)) ** 2",
        ("tests/test_admm.py",),
        "the DCT-diagonalised TV Laplacian's eigenvalues 4 sin² → 3.8 sin²",
    ),
    Mutation(
        "monitor-or",
        "bregmod/solvers/_common.py",
        "worst = max(values[key] for key in measured if key in values)",
        "worst = min(values[key] for key in measured if key in values)",
        ("tests/test_solvers.py",),
        "the shared stopping policy accepting the primal OR the dual residual",
    ),
    Mutation(
        "admm-data-residual-only",
        "bregmod/solvers/admm.py",
        "        primal = np.maximum(primal_y, primal_reg)",
        "        primal = primal_y",
        ("tests/test_admm.py::test_float32_reaches_float32_accuracy", "tests/test_kkt.py"),
        "admm stopping on the data block's primal residual only (regulariser blocks ignored)",
    ),
    Mutation(
        "lifted-lipschitz-plus-one",
        "bregmod/model/lifted.py",
        "            + 1.0\n            + self.mu",
        "            + self.mu",
        ("tests/test_smooth_parts.py",),
        "LiftedSmooth's Lipschitz bound λ‖K‖² + ‖W‖² + 1 + μ(…) without its +1",
    ),
    Mutation(
        "curvature-operator-sign",
        "bregmod/model/lifted.py",
        "[self.root_lam * self.lifted.K.apply(u), self.lifted.W.apply(u) - z], axis=1",
        "[self.root_lam * self.lifted.K.apply(u), self.lifted.W.apply(u) + z], axis=1",
        ("tests/test_smooth_parts.py",),
        "the reduced curvature operator G ξ = (√λ K u, W u + z): a wrong Lipschitz bound",
    ),
    Mutation(
        "lifted-gradient-half-mu",
        "bregmod/model/lifted.py",
        "            q = self.mu * a if multiplier is None else self.mu * a + multiplier",
        "            q = self.mu / 2 * a if multiplier is None else self.mu * a + multiplier",
        ("tests/test_smooth_parts.py",),
        "LiftedSmooth's gradient inconsistent with its value (q = μ/2·a)",
    ),
    Mutation(
        "lifted-data-constant-half",
        "bregmod/model/lifted.py",
        "        return 0.5 * self.lam * _batch_dot(residual, residual)",
        "        return self.lam * _batch_dot(residual, residual)",
        ("tests/test_model.py", "tests/test_cvxpy_backend.py"),
        "the constant λ/2‖c − f‖² the exact backend reads from the model without its ½",
    ),
    Mutation(
        "feasible-point-z-unprojected",
        "bregmod/model/lifted.py",
        "            z[:, blk.slice] = act.project_domain(z[:, blk.slice])",
        "            z[:, blk.slice] = z[:, blk.slice]",
        ("tests/test_model.py",),
        "the exact backend's feasible point leaving z outside dom Ψ",
    ),
    Mutation(
        "weighted-sum-domain-ignores-box",
        "bregmod/regularizers.py",
        "        return boxes[0].project_domain(u) if boxes else super().project_domain(u)",
        "        return super().project_domain(u)",
        ("tests/test_regularizers.py", "tests/test_model.py"),
        "dom J of a sum with an indicator taken as all of ℝⁿ (u₀ left outside the box)",
    ),
    Mutation(
        "auto-size-limit",
        "bregmod/solvers/registry.py",
        "            if size > AUTO_EXACT_LIMIT:",
        "            if False:",
        ("tests/test_kkt.py",),
        "solver='auto' ignoring AUTO_EXACT_LIMIT (exact backend on any size)",
    ),
    Mutation(
        "pdhg-no-dual-fallback",
        "bregmod/solvers/pdhg.py",
        '        if constraint == "eliminate":\n            raise',
        "        if True:\n            raise",
        ("tests/test_kkt.py",),
        "pdhg raising instead of falling back to the dual constraint when elimination fails",
    ),
    Mutation(
        "bound-vacuous-exit-0",
        "bregmod/cli.py",
        "    return 0 if check.holds and np.isfinite(check.bound) else EXIT_NEGATIVE",
        "    return 0 if check.holds else EXIT_NEGATIVE",
        (
            "tests/test_cli.py::test_bound_with_an_infinite_burbea_rao_part_is_vacuous_and_negative",
            "tests/test_cli.py::test_bound_exit_code_of_every_verdict",
        ),
        "`bregmod bound` exiting 0 for a vacuous (infinite) bound",
    ),
    Mutation(
        "deep-state-step-sign",
        "bregmod/model/deep.py",
        "        return self.prox_phi(l, states[l] - mu * self.state_gradient(l, states),",
        "        return self.prox_phi(l, states[l] + mu * self.state_gradient(l, states),",
        ("tests/test_deep_model.py",),
        "the deep model's state step ascending instead of descending",
    ),
    Mutation(
        "deep-state-gradient-sign",
        "bregmod/model/deep.py",
        "            grad = -pre if grad is None else grad - pre",
        "            grad = -pre if grad is None else grad + pre",
        ("tests/test_deep_model.py",),
        "the state gradient with +(W_k x_{k−1} + b_k) (a hidden state's coupling to its input)",
    ),
    Mutation(
        "deep-prox-phi-step",
        "bregmod/activations.py",
        "        return self.prox_scaled(np.asarray(v) / (1 + t), t / (1 + t))",
        "        return self.prox_scaled(np.asarray(v) / (1 + t), t)",
        ("tests/test_deep_model.py",),
        "prox of μΦ = prox_{μ/(1+μ)Ψ}(·/(1+μ)) with the step μ instead of μ/(1+μ)",
    ),
    Mutation(
        "deep-weighted-prox-step",
        "bregmod/model/deep.py",
        "                             self._weighted(l, mu))",
        "                             mu)",
        ("tests/test_deep_model.py",),
        "the weighted state step with prox_{μΦ_l} instead of prox_{μγ_lΦ_l}",
    ),
    Mutation(
        "palm-weighted-gradient",
        "bregmod/solvers/palm.py",
        "grad = gammas[k] * model.operator(k + 1).apply_adjoint(residual)",
        "grad = model.operator(k + 1).apply_adjoint(residual)",
        ("tests/test_palm.py::test_weighted_stationary_point_satisfies_the_weighted_block_conditions",),
        "palm's block gradient without the weight γ_{k+1} of the term above",
    ),
    Mutation(
        "palm-weighted-safe-step",
        "bregmod/solvers/palm.py",
        "safe = [1.0 / model.state_lipschitz(k) for k in range(L)]",
        "safe = [1.0 / n**2 for n in norms]",
        ("tests/test_palm.py::test_weighted_steps_keep_the_energy_monotone_where_the_lipschitz_"
         "bound_is_attained",),
        "palm's step floor 1/‖W‖² instead of 1/(γ‖W‖²) (the Lipschitz constant scales with γ)",
    ),
    Mutation(
        "palm-prox-warm-unscaled",
        "bregmod/solvers/palm.py",
        "self.duals = [None if q is None else q * (tau / self.tau) for q in self.duals]",
        "self.duals = [None if q is None else q for q in self.duals]",
        ("tests/test_palm.py::test_warm_started_input_prox_matches_cvxpy_in_fewer_inner_"
         "iterations",),
        "palm's input prox warm-started with the dual of the previous step, not rescaled by "
        "μ⁺/μ (the dual feasible set scales with the step)",
    ),
    Mutation(
        "palm-prox-relative-anchor",
        "bregmod/solvers/palm.py",
        "input_prox(v, mu, floor, anchor=x)",
        "input_prox(v, mu, floor, anchor=v)",
        ("tests/test_palm.py::test_inexact_input_prox_keeps_the_energy_monotone_and_the_"
         "stationarity_bound",),
        "palm's relative prox error measured from the prox argument v instead of the block's "
        "point u (the error then never shrinks)",
    ),
    Mutation(
        "palm-prox-affine-extrapolation",
        "bregmod/solvers/palm.py",
        "LU_Y = [ln + beta * (ln - lq) for ln, lq in zip(LU_next, LU, strict=True)]",
        "LU_Y = LU_next",
        ("tests/test_palm.py::test_affine_dual_fista_reproduces_the_general_iteration",),
        "palm's dual FISTA without a simple part: L u at the extrapolated point not extrapolated",
    ),
    Mutation(
        "palm-prox-relative-constant",
        "bregmod/solvers/palm.py",
        "RELATIVE_PROX_ERROR = 0.25",
        "RELATIVE_PROX_ERROR = 2.0",
        ("tests/test_palm.py::test_inexact_input_prox_keeps_the_energy_monotone_and_the_"
         "stationarity_bound",),
        "palm's relative prox error rule with c > ½ (no sufficient decrease is guaranteed)",
    ),
    Mutation(
        "spec-layer-weights-dropped",
        "bregmod/spec.py",
        "    if layer_weights is not None:\n        try:",
        "    if layer_weights is None:\n        try:",
        ("tests/test_spec.py::test_layer_weights_weight_the_deep_model",),
        "a spec's model.layer_weights read but not applied to the problem",
    ),
    Mutation(
        "palm-weighted-descent-test",
        "bregmod/solvers/palm.py",
        "lhs = gammas[k] * (term_new",
        "lhs = (term_new",
        ("tests/test_palm.py::test_weighted_steps_keep_the_energy_monotone_where_the_lipschitz_"
         "bound_is_attained",),
        "palm's backtracking test on the unweighted term (accepts steps γ times too long)",
    ),
    Mutation(
        "layer-weights-data-term",
        "bregmod/problem.py",
        "layer_weights = [gamma] * (L - 1) + [1.0]",
        "layer_weights = [gamma] * L",
        ("tests/test_palm.py::test_large_hidden_weights_approach_the_reduced_minimiser",),
        "a scalar layer_weights γ weighting the data term too (the limit is then not the "
        "reduced problem)",
    ),
    Mutation(
        "deep-param-gradient-mean",
        "bregmod/model/deep.py",
        "ParameterGradient(residual.T @ x_prev / batch, residual.sum(axis=0) / batch)",
        "ParameterGradient(residual.T @ x_prev, residual.sum(axis=0) / batch)",
        ("tests/test_deep_model.py",),
        "the dense weight gradient summed instead of averaged over the batch",
    ),
    Mutation(
        "training-anchor-sign",
        "bregmod/training.py",
        "        gW = gW + (W - W0) / tau",
        "        gW = gW - (W - W0) / tau",
        ("tests/test_training.py::test_implicit_step_solves_its_proximal_subproblem",),
        "the implicit step's proximal term 1/(2τ)‖W − W^k‖² with the wrong sign in its gradient",
    ),
    Mutation(
        "training-state-order-bottom-up",
        "bregmod/training.py",
        "                for l in range(L - 1, 0, -1):",
        "                for l in range(1, L):",
        ("tests/test_training.py::test_one_sweep_reaches_every_layer",),
        "hidden states swept bottom-up: from the forward pass the first layers never train",
    ),
    Mutation(
        "training-weight-decay-sign",
        "bregmod/training.py",
        "return weight + self._weight_decay * _parameters(model, l)[0], bias",
        "return weight - self._weight_decay * _parameters(model, l)[0], bias",
        ("tests/test_training.py",),
        "weight decay λ W_l entering the gradient with the wrong sign",
    ),
    Mutation(
        "training-conv-step-gram",
        "bregmod/training.py",
        "inputs = op.patches(X[l - 1]) if isinstance(op, Conv2dOperator) else X[l - 1]",
        "inputs = X[l - 1]",
        ("tests/test_training.py::test_conv_implicit_step_solves_its_proximal_subproblem",),
        "convolution weight step from the Gram matrix of the raw inputs, not of the im2col patches",
    ),
    Mutation(
        "training-l1-prox-step",
        "bregmod/training.py",
        "    return model.prox_phi(l, _soft_threshold(v, mu * alpha) if alpha > 0 else v, mu)",
        "    return model.prox_phi(l, _soft_threshold(v, alpha) if alpha > 0 else v, mu)",
        ("tests/test_training.py",),
        "the state's ℓ1 prox thresholding at α instead of μα",
    ),
    Mutation(
        "training-weight-lipschitz",
        "bregmod/training.py",
        "_largest_eigenvalue_of_gram([part.gram for part in parts]) / rows + 1.0 / tau",
        "_largest_eigenvalue_of_gram([part.gram for part in parts]) / rows / 4 + 1.0 / tau",
        ("tests/test_training.py",),
        "the weight step 1/L with L underestimated 4× in its data part (steps too long)",
    ),
    Mutation(
        "training-shard-backtracking",
        "bregmod/training.py",
        "        return np.sum(np.stack(sums), axis=0)",
        "        return sums[0]",
        ("tests/test_distributed.py::test_the_reductions_over_shards_are_the_batch_sums",),
        "data-parallel training: the first shard's sums decide the batch's backtracking test",
    ),
    Mutation(
        "training-shard-weights",
        "bregmod/training.py",
        "weight = sum((part.rows / rows) * part.gradient.weight for part in parts)",
        "weight = sum((1 / len(parts)) * part.gradient.weight for part in parts)",
        ("tests/test_distributed.py::test_data_parallel_training_matches_single_process",),
        "data-parallel training: shard gradients averaged without their weights m_p/m",
    ),
    Mutation(
        "unfolded-chain-rule-sign",
        "bregmod/unfolded.py",
        "grads_L.append(-tau * (G_uu + G_uu.T) @ L + tau * G[:m, m:])",
        "grads_L.append(-tau * (G_uu + G_uu.T) @ L - tau * G[:m, m:])",
        ("tests/test_unfolded.py",),
        "tied PNN training: the τ L z block's gradient enters with the wrong sign",
    ),
    Mutation(
        "unfolded-output-tie",
        "bregmod/unfolded.py",
        "grads_L[-1] = grads_L[-1] - blocks[K][:, :m].T",
        "grads_L[-1] = grads_L[-1]",
        ("tests/test_unfolded.py",),
        "tied PNN training: the output layer's share of the gradient of L_K is dropped",
    ),
    Mutation(
        "unfolded-armijo",
        "bregmod/unfolded.py",
        "bound = value - 0.5 * step * norm_sq",
        "bound = value + 0.5 * step * norm_sq",
        ("tests/test_unfolded.py",),
        "tied PNN training: the kernel step accepts a step that increases its subproblem",
    ),
    Mutation(
        "admm-frozen-row-order",
        "bregmod/solvers/admm.py",
        "            self.u[int(self.active[i])] = u_out[i].copy()\n",
        "            self.u[int(i)] = u_out[i].copy()\n",
        ("tests/test_gap.py",),
        "a converged (frozen) batch item stored under its index among the active ones",
    ),
    Mutation(
        "gap-tv-dual-radius",
        "bregmod/solvers/gap.py",
        "p = p / np.maximum(1.0, self.norm.dual_norm(p) / self.weight)[:, None]",
        "p = p / np.maximum(1.0, self.norm.dual_norm(p))[:, None]",
        ("tests/test_gap.py",),
        "the duality gap's TV dual projected on the unit ball instead of the ball of radius W",
    ),
    Mutation(
        "gap-data-dual-mixing",
        "bregmod/solvers/gap.py",
        "q = theta[:, None] * q + (1.0 - theta[:, None]) * self.data",
        "q = theta[:, None] * q",
        ("tests/test_gap.py",),
        "the scaled data dual θλ taken as θ(λ + f) − f: an infeasible dual, a false bound",
    ),
    Mutation(
        "gap-simple-conjugate-sign",
        "bregmod/solvers/gap.py",
        '+ self.simple.conjugate(v) - np.einsum("ij,ij->i", v, u)',
        '+ self.simple.conjugate(v) + np.einsum("ij,ij->i", v, u)',
        ("tests/test_gap.py",),
        "the simple part's Fenchel–Young gap s(u) + s*(v) − ⟨v, u⟩ with the wrong sign",
    ),
    Mutation(
        "admm-gram32-woodbury-au",
        "bregmod/solvers/admm.py",
        "if not exact and ((bound <= setup.tol).any() or k == setup.max_iter):",
        "if False:",
        ("tests/test_admm.py::test_float32_gram_keeps_the_certificate",),
        "admm with the float32 Gram certifying at the u-step's approximate A u, not at Â û",
    ),
    Mutation(
        "admm-halves-when-pinned",
        "bregmod/solvers/admm.py",
        "if entries >= _SPLIT_ENTRIES and batch >= 2 and idle_threads(1.0) >= 2:",
        "if entries >= _SPLIT_ENTRIES and batch >= 2 and idle_threads(1.0) >= 1:",
        ("tests/test_admm.py::test_a_pinned_batch_is_not_split",),
        "admm splitting a batch onto two threads although BLAS is pinned to one thread",
    ),
    Mutation(
        "admm-halves-merge-order",
        "bregmod/solvers/admm.py",
        "np.concatenate([np.asarray(r.u, dtype=np.float64) for r in results]),",
        "np.concatenate([np.asarray(r.u, dtype=np.float64) for r in results[::-1]]),",
        ("tests/test_admm.py::test_a_large_batch_runs_as_two_halves_on_threads",),
        "admm's two halves of a batch merged in the wrong order",
    ),
    Mutation(
        "admm-incremental-sign",
        "bregmod/solvers/admm.py",
        "image = self.image + _rows_times(delta.astype(np.float32), self.M32)",
        "image = self.image - _rows_times(delta.astype(np.float32), self.M32)",
        ("tests/test_admm.py::test_incremental_product_follows_the_exact_products",),
        "admm's float32-increment product subtracting the increment's product",
    ),
    Mutation(
        "admm-incremental-batch-rows",
        "bregmod/solvers/admm.py",
        "image[exact] = _rows_times(X[exact], self.M)",
        "image[exact] = self.image[exact]",
        (
            "tests/test_admm.py::test_incremental_product_follows_the_exact_products",
            "tests/test_admm.py::test_incremental_products_in_a_batch",
        ),
        "admm's float32-increment product not recomputing a batch row whose increments drifted",
    ),
    Mutation(
        "admm-incremental-kkt-dual",
        "bregmod/solvers/admm.py",
        "exact_dual=duality is None,",
        "exact_dual=False,",
        ("tests/test_admm.py::test_incremental_products_keep_the_certificate",),
        "admm under the KKT rule stopping on a dual residual from float32-increment products",
    ),
    Mutation(
        "admm-gemv-rows",
        "bregmod/solvers/admm.py",
        "np.matmul(x, M, out=row)",
        "np.matmul(X[0], M, out=row)",
        ("tests/test_admm.py::test_woodbury_u_step_solves_the_system",),
        "the per-row matrix–vector products of the u-step using the first row for every row",
    ),
    Mutation(
        "admm-penalty-batch-late-increase",
        "bregmod/solvers/admm.py",
        "self._change(~self.late_done & (residual < _LATE_THRESHOLD), _LATE_FACTOR)",
        "self._change(~self.late_done & (residual.max() < _LATE_THRESHOLD), _LATE_FACTOR)",
        ("tests/test_gap.py::test_batch_items_follow_their_own_penalty_schedules",),
        "admm's late penalty increase decided for a batch item on the batch's worst residual",
    ),
    Mutation(
        "admm-penalty-batch-catch-up",
        "bregmod/solvers/admm.py",
        "lagging = self.raised & (primal <= self.tol) & (dual > _CATCH_UP_RATIO * primal)",
        "lagging = self.raised & (primal.max() <= self.tol) & (dual > _CATCH_UP_RATIO * primal)",
        ("tests/test_gap.py::test_batch_items_follow_their_own_penalty_schedules",),
        "admm's catch-up of a batch item waiting for the batch's largest primal residual",
    ),
    Mutation(
        "admm-penalty-other-item",
        "bregmod/solvers/admm.py",
        "return values[:, None].astype(self.dtype)",
        "return values[:1, None].astype(self.dtype)",
        ("tests/test_gap.py::test_batch_items_follow_their_own_penalty_schedules",),
        "the u-step right-hand side of every batch item scaled by the first item's penalties",
    ),
    Mutation(
        "admm-inverse-wrong-group",
        "bregmod/solvers/admm.py",
        "self.groups.append((rows, _IncrementalProduct(*inverses[pair])))",
        "self.groups.append((rows, _IncrementalProduct(*next(iter(inverses.values())))))",
        ("tests/test_admm.py::test_woodbury_u_step_solves_the_system",),
        "every group of batch rows solved with the C⁻¹ of the first penalty pair",
    ),
    Mutation(
        "admm-inverse-cache-key",
        "bregmod/solvers/admm.py",
        "_row_groups(np.stack([rho_y, rho_p], axis=1))",
        "_row_groups(np.stack([rho_y, rho_y], axis=1))",
        ("tests/test_admm.py::test_woodbury_u_step_solves_the_system",),
        "the cache of C⁻¹ keyed (and inverted) by ρ_y alone, ρ_p ignored",
    ),
    Mutation(
        "admm-inverse-cache-kept",
        "bregmod/solvers/admm.py",
        "        self.inverses = inverses\n",
        "        self.inverses.update(inverses)\n",
        ("tests/test_admm.py::test_woodbury_inverses_are_kept_per_penalty_pair_in_use",),
        "the m × m inverses of penalty pairs no batch row holds any more never dropped",
    ),
    Mutation(
        "admm-anderson-reset-all",
        "bregmod/solvers/admm.py",
        "anderson.reset(changed)",
        "anderson.reset(np.ones_like(changed))",
        ("tests/test_gap.py::test_batch_items_follow_their_own_penalty_schedules",),
        "one batch item's penalty change clearing the Anderson memory of every item",
    ),
    Mutation(
        "admm-anderson-reject-all",
        "bregmod/solvers/admm.py",
        "            self.reset(rejected)\n",
        "            self.reset(np.full_like(rejected, True))\n",
        ("tests/test_admm.py::test_anderson_accelerates_each_row_as_alone",),
        "one row's rejected Anderson candidate clearing the memory of every row",
    ),
    Mutation(
        "admm-anderson-empty-slots",
        "bregmod/solvers/admm.py",
        "gram[empty[:, :, None] | empty[:, None, :]] = 0.0",
        "gram[empty[:, :, None] & empty[:, None, :]] = 0.0",
        ("tests/test_admm.py::test_anderson_accelerates_each_row_as_alone",),
        "Anderson's least squares of a row with fewer differences keeping stale Gram entries",
    ),
    Mutation(
        "admm-frozen-statistics-order",
        "bregmod/solvers/admm.py",
        "self.statistics[int(self.active[i])] = statistics[i]",
        "self.statistics[int(i)] = statistics[i]",
        ("tests/test_gap.py::test_batch_items_follow_their_own_penalty_schedules",),
        "a frozen batch item's penalties and iterations stored under its index among the active",
    ),
    Mutation(
        "dct-matrix-transpose",
        "bregmod/solvers/_dct.py",
        "np.matmul(np.matmul(matrices[0], images), matrices[1].T)",
        "np.matmul(np.matmul(matrices[0], images), matrices[1])",
        ("tests/test_admm.py::test_dct_diagonalises_the_neumann_laplacian",),
        "the matrix form of the 2-D DCT applying C_W instead of C_Wᵀ along the rows",
    ),
    Mutation(
        "loop-threads-keeps-slower",
        "bregmod/solvers/_threads.py",
        "return min(best, key=best.get)",
        "return max(best, key=best.get)",
        ("tests/test_threads.py",),
        "LoopThreads keeping the thread count whose timed products were slower",
    ),
    Mutation(
        "loop-threads-never-again",
        "bregmod/solvers/_threads.py",
        "if self._slow >= 2:",
        "if self._slow >= 2 and self.timings == 0:",
        ("tests/test_threads.py",),
        "LoopThreads never timing the products again after a slowdown",
    ),
    Mutation(
        "loop-threads-slow-streak-kept",
        "bregmod/solvers/_threads.py",
        "self._slow = self._slow + 1 if elapsed > SLOWDOWN * self._fastest else 0",
        "self._slow = self._slow + 1 if elapsed > SLOWDOWN * self._fastest else self._slow",
        ("tests/test_threads.py",),
        "isolated slow iterations adding up to a new timing (the streak not reset by a fast one)",
    ),
    Mutation(
        "loop-threads-no-margin",
        "bregmod/solvers/_threads.py",
        "idle_threads(_PROBE_MARGIN) if self.flops",
        "idle_threads() if self.flops",
        ("tests/test_threads.py",),
        "LoopThreads not timing a core that other work leaves half idle",
    ),
    Mutation(
        "busy-own-threads-state",
        "bregmod/solvers/_threads.py",
        'own += stat[stat.rindex(")") + 2] == "R"',
        'own += stat[stat.rindex(")") + 2] == "S"',
        ("tests/test_threads.py",),
        "busy_elsewhere leaving out this process's sleeping BLAS threads, not its running ones",
    ),
    Mutation(
        "busy-python-threads-left-out",
        "bregmod/solvers/_threads.py",
        "if int(tid) in python:",
        "if int(tid) == threading.get_native_id():",
        ("tests/test_threads.py",),
        "busy_elsewhere not counting this process's other running Python threads as busy",
    ),
    Mutation(
        "busy-largest-reading",
        "bregmod/solvers/_threads.py",
        "min(_runnable_elsewhere() for _ in range(_READINGS))",
        "max(_runnable_elsewhere() for _ in range(_READINGS))",
        ("tests/test_threads.py",),
        "busy_elsewhere keeping the largest reading (a momentary thread counted as a busy core)",
    ),
    Mutation(
        "loop-threads-no-second-timing",
        "bregmod/solvers/_threads.py",
        "if self._ticks == _SECOND_TIMING and self.count == 1 and self.timings == 1:",
        "if self._ticks == _SECOND_TIMING and self.count == 2 and self.timings == 1:",
        ("tests/test_threads.py",),
        "LoopThreads never timing again a loop its first timing put on one thread",
    ),
    Mutation(
        "float32-hint-far-from-tol",
        "bregmod/solvers/_common.py",
        "near = self._single and self.tol < FLOAT32_TOL and reached <= _FLOAT32_NEAR * self.tol",
        "near = self._single and self.tol < FLOAT32_TOL",
        ("tests/test_admm.py::test_a_float32_run_stopped_near_a_tol_below_1e_5_suggests_float64",),
        "the float32 max_iter message naming float64 when max_iter stopped the run far from tol",
    ),
    Mutation(
        "loop-threads-no-abort",
        "bregmod/solvers/_threads.py",
        "if count > 1 and warm_up > _PROBE_ABORT * best[1]:",
        "if count > 1 and warm_up > 1e9 * best[1]:",
        ("tests/test_threads.py",),
        "LoopThreads timing a busy core in full after a slow warm-up",
    ),
    Mutation(
        "woodbury-symmetric-diagonal",
        "bregmod/solvers/admm.py",
        "np.fill_diagonal(full, np.diagonal(upper))",
        "np.fill_diagonal(full, 2 * np.diagonal(upper))",
        ("tests/test_admm.py::test_woodbury_u_step_solves_the_system",),
        "C⁻¹ symmetrised from its upper triangle with the diagonal counted twice",
    ),
)


def mutation_table() -> dict[str, Mutation]:
    """The mutations by name (names are unique)."""
    table = {m.name: m for m in MUTATIONS}
    if len(table) != len(MUTATIONS):
        raise ValueError("duplicate mutation names in MUTATIONS")
    return table


def occurrences(mutation: Mutation, root: Path = ROOT) -> int:
    """How often ``mutation.original`` occurs in its file under ``root`` (must be 1)."""
    path = root / mutation.path
    return path.read_text(encoding="utf-8").count(mutation.original) if path.is_file() else 0


def locate(mutation: Mutation, root: Path = ROOT) -> str | None:
    """The file holding ``mutation.original`` exactly once: ``mutation.path``, or, when the code
    moved verbatim to another module of the package, the only ``bregmod/**/*.py`` holding it
    (exactly once); None when the entry is stale."""
    if occurrences(mutation, root) == 1:
        return mutation.path
    found = [
        path for path in sorted((root / "bregmod").rglob("*.py"))
        if mutation.original in path.read_text(encoding="utf-8")
    ]
    if len(found) == 1 and found[0].read_text(encoding="utf-8").count(mutation.original) == 1:
        return found[0].relative_to(root).as_posix()
    return None


def repository_files(root: Path = ROOT) -> list[str]:
    """Tracked files and untracked files git does not ignore, relative to ``root``."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root, capture_output=True, check=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (root / name).is_file()]


def scratch_copy(root: Path, target: Path) -> None:
    """Copy the repository's files (see :func:`repository_files`) to ``target``."""
    for name in repository_files(root):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)


def _environment(scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(scratch), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no bytecode of a mutated file is ever cached
    env.pop("CI", None)
    return env


def _check_import_path(scratch: Path, env: dict[str, str]) -> None:
    """The scratch copy, not an installed bregmod, must be what the tests import."""
    found = subprocess.run(
        [sys.executable, "-c", "import bregmod; print(bregmod.__file__)"],
        cwd=scratch, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(scratch.resolve()):
        raise RuntimeError(f"the tests would import {found}, not the scratch copy in {scratch}")


@dataclass
class Outcome:
    """What happened to one mutation: ``verdict`` is killed/survived/stale/error."""

    mutation: Mutation
    verdict: str
    detail: str
    seconds: float


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0].split(" ", 1)[1]
    return ""


def run_mutation(mutation: Mutation, scratch: Path, env: dict[str, str]) -> Outcome:
    """Apply ``mutation`` in ``scratch``, run its tests, restore the file; return the outcome."""
    where = locate(mutation, scratch)
    if where is None:
        return Outcome(mutation, "stale", "original text not found exactly once", 0.0)
    path = scratch / where
    text = path.read_text(encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider"]
    if mutation.slow:
        command += ["-m", "slow or not slow"]
    start = time.perf_counter()
    try:
        path.write_text(text.replace(mutation.original, mutation.mutated), encoding="utf-8")
        run = subprocess.run(
            [*command, *mutation.tests], cwd=scratch, env=env, capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(mutation, "killed", f"timeout after {TIMEOUT} s",
                       time.perf_counter() - start)
    finally:
        path.write_text(text, encoding="utf-8")
    seconds = time.perf_counter() - start
    if run.returncode == 0:
        return Outcome(mutation, "survived", "all listed tests pass", seconds)
    if run.returncode == 1:
        return Outcome(mutation, "killed", _first_failure(run.stdout) or "a test failed", seconds)
    if run.returncode == 2:
        failure = _first_failure(run.stdout)
        return Outcome(mutation, "killed", f"collection error {failure}".strip(), seconds)
    tail = " ".join(run.stdout.strip().splitlines()[-1:])
    return Outcome(mutation, "error", f"pytest exit {run.returncode}: {tail}", seconds)


def markdown(outcomes: list[Outcome]) -> str:
    """The outcomes as a Markdown table (mutation, what it models, verdict, killing test)."""
    lines = ["| mutation | models | verdict | killed by / why it survives |", "|---|---|---|---|"]
    for o in outcomes:
        accepted = o.verdict == "survived" and o.mutation.survives
        detail = o.mutation.survives if accepted else o.detail
        detail = re.sub(r"\s+", " ", detail).replace("|", "\\|")
        lines.append(f"| `{o.mutation.name}` | {o.mutation.models} | {o.verdict} | {detail} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the selected mutations; exit 1 on an unexplained survivor, a stale entry or error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", default=[],
                        help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    table = mutation_table()
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:<28} {m.path}: {m.models}")
        return 0
    unknown = [name for name in args.only if name not in table]
    if unknown:
        parser.error(f"unknown mutation(s) {unknown}; see --list")
    selected = [table[name] for name in args.only] if args.only else list(MUTATIONS)
    # SIGTERM unwinds like Ctrl-C: the running pytest is killed, the scratch copy removed
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bregmod-mutations-") as folder:
        scratch = Path(folder)
        scratch_copy(ROOT, scratch)
        env = _environment(scratch)
        _check_import_path(scratch, env)
        for mutation in selected:
            outcome = run_mutation(mutation, scratch, env)
            outcomes.append(outcome)
            note = f" (accepted: {mutation.survives})" if (
                outcome.verdict == "survived" and mutation.survives) else ""
            print(f"{outcome.verdict.upper():<9} {mutation.name:<28} {outcome.seconds:6.1f} s  "
                  f"{outcome.detail}{note}", flush=True)
    bad = [o for o in outcomes if o.verdict in ("stale", "error")
           or (o.verdict == "survived" and not o.mutation.survives)]
    killed = sum(o.verdict == "killed" for o in outcomes)
    print(f"\n{killed} of {len(outcomes)} killed; "
          f"{len(bad)} unexplained survivor(s), stale entries or errors")
    if args.markdown:
        print("\n" + markdown(outcomes))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
