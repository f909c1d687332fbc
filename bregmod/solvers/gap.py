r"""The Fenchel duality gap of the one-layer Bregman problem: a bound on the objective error.

Problem (``Inversion(..., fidelity="bregman")``, J = s + W·g(∇u) from ``J.split()``)::

    P(u) = h(A u + β) + W g(∇u) + s(u),     h(y) = Σ Φ∗(y) − ⟨f, y⟩ + Σ Φ(f),

with g the ℓ2,1 norm of TV (the TV terms w_k g(∇u) of J summed, W = Σ_k w_k; none when J
has no TV) and s the separable simple part (a ½‖·‖² + b‖·‖₁ + ι_box, or none). Its Fenchel dual
(h∗(λ) = Σ Φ(λ + f) − Σ Φ(f), (W g)∗ = ι{‖p‖_{2,∞} ≤ W}) is

    D(λ, p) = ⟨λ, β⟩ − h∗(λ) − s∗(v),       v = −Aᵀλ − ∇ᵀp,   ‖p‖_{2,∞} ≤ W

(s = 0: s∗ = ι_{0}, i.e. Aᵀλ + ∇ᵀp = 0). Weak duality P∗ ≥ D(λ, p) for every feasible (λ, p),
and P(u) − D(λ, p) is the sum of three Fenchel–Young gaps, each ≥ 0:

    G = Σ B_Ψ(q, x)  +  [W g(∇u) − ⟨p, ∇u⟩]  +  [s(u) + s∗(v) − ⟨v, u⟩],   x = A u + β, q = λ + f,

the first being the Bregman penalty itself (h(x) + h∗(λ) − ⟨λ, x⟩ = Σ Φ∗(x) + Φ(q) − ⟨q, x⟩),
computed by the activation's accurate :meth:`~bregmod.activations.Activation.bregman_terms`.
So the relative objective error of u is at most G / min(|P(u)|, |P(u) − G|) when P(u) and
P(u) − G have the same sign (P∗ lies between them); that is the bound reported.

Dual points. A solver supplies q = λ + f in the range of σ (then λ ∈ dom h∗: ADMM's
λ_y = σ(z_y) − f, PDHG's data dual, or σ(A u + β) − f), Aᵀλ from its own product with Aᵀ, and
its TV multipliers p₀ (each in the ball of its weight, so Σ p₀ in the ball of W). They are made
feasible without another product with A or Aᵀ:

∗ s present: p = p₀ projected on the ball of radius W, v = −Aᵀλ − ∇ᵀp; where dom s∗ is an
  interval [q_lo, q_hi] ∋ 0 (ℓ1 without a quadratic part), (λ, p, v) are scaled by the largest
  θ ∈ [0, 1] with θv ∈ dom s∗ (θλ ∈ dom h∗ since dom h∗ is convex and holds λ and 0: q becomes
  θq + (1 − θ)f).
∗ s absent (TV only): Aᵀλ + ∇ᵀp = 0 needs 1ᵀAᵀλ = ⟨A1, λ⟩ = 0 (∇ᵀp has zero mean). λ is mixed
  with one of two anchor duals λ̄± = σ(β + c± A1) − f chosen at setup with ⟨A1, λ̄±⟩ of either
  sign (⟨A1, σ(β + c A1)⟩ is nondecreasing in c; a doubling search finds c±, their Aᵀλ̄± cost one
  product with Aᵀ once): λ ← (1 − t)λ + t λ̄ with t ∈ [0, 1) zeroing the mean. Then
  p = p₀ + ∇(∇ᵀ∇)⁺(−Aᵀλ − ∇ᵀp₀) (a DCT solve) satisfies ∇ᵀp = −Aᵀλ, and (λ, p) are scaled by
  θ = min(1, W/‖p‖_{2,∞}).

Both corrections vanish as the solver converges (its multipliers become feasible), so G → 0.
Feasibility of the linear constraint holds up to rounding (the DCT solve, Aᵀλ in the iterate
dtype); the terms are evaluated in float64. Not covered (:meth:`DualityGap.of` says why and the
solvers fall back to their KKT residuals): no TV and no simple part; a simple part whose
conjugate domain does not contain a neighbourhood of 0 (NonNegative, a one-sided box); TV
terms on an operator other than :class:`~bregmod.operators.Gradient2D` or with different norms.
"""

from __future__ import annotations

import numpy as np

from bregmod.errors import DomainError
from bregmod.model.onelayer import OneLayerEnergy, regularizer_rows
from bregmod.operators import Gradient2D
from bregmod.solvers._dct import CosineTransform

__all__ = ["DualityGap", "guarantee", "relative_bound"]

#: Largest |c|·max|A1| tried by the doubling search for the anchor duals (2⁶⁰ steps of 2).
_ANCHOR_DOUBLINGS = 60


def relative_bound(objective: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Bound on |P(u) − P∗|/|P∗| from P(u) and a gap G ≥ P(u) − P∗ (per row).

    P∗ ∈ [P − G, P], so the error is ≤ G / min(|P|, |P − G|) when both ends have the same sign
    and are nonzero; +inf otherwise (the interval holds 0 and no relative bound exists).
    """
    objective = np.asarray(objective, dtype=np.float64)
    gap = np.asarray(gap, dtype=np.float64)
    lower = objective - gap
    same_sign = (lower > 0) | (objective < 0)
    scale = np.minimum(np.abs(objective), np.abs(lower))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(same_sign & (scale > 0), gap / np.where(scale > 0, scale, 1.0), np.inf)


class DualityGap:
    """Duality gap G(u; λ, p) of the one-layer Bregman problem (see the module docstring).

    Build it with :meth:`of`, which returns None (and the reason) where no gap is available.

    Parameters
    ----------
    energy : OneLayerEnergy
        The model (A, β, σ, the data rows f).
    simple : Regularizer or None
        The simple part s of J (separable).
    composites : list of (weight, Gradient2D, L21Norm)
        The TV terms of J.
    """

    def __init__(self, energy: OneLayerEnergy, simple, composites) -> None:
        self.energy = energy
        self.activation = energy.activation
        self.data = np.asarray(energy.data, dtype=np.float64)
        self.simple = simple
        self.weight = float(sum(w for w, _, _ in composites))
        self.gradient = composites[0][1] if composites else None
        self.norm = composites[0][2] if composites else None
        self.transform = CosineTransform(self.gradient.in_shape) if composites else None
        self.domain = simple.conjugate_domain() if simple is not None else None
        self.anchors = self._anchors() if simple is None else None

    @classmethod
    def of(cls, energy: OneLayerEnergy, simple, composites) -> tuple[DualityGap | None, str]:
        """(the gap, "") where the module docstring's dual points exist, else (None, why not)."""
        if composites:
            first_L, first_g = composites[0][1], composites[0][2]
            for _, L, g in composites:
                if not isinstance(L, Gradient2D) or L.in_shape != first_L.in_shape:
                    return None, f"a composite term on {L!r} (only TV with Gradient2D)"
                if type(g) is not type(first_g) or getattr(g, "components", None) != getattr(
                    first_g, "components", None
                ):
                    return None, "TV terms with different norms"
                if not hasattr(g, "dual_norm"):
                    return None, f"a TV norm {g!r} without a dual norm"
        if simple is None and not composites:
            return None, "J has neither TV nor a simple part, so Aᵀλ = 0 cannot be made to hold"
        if simple is not None:
            try:
                q_lo, q_hi = simple.conjugate_domain()
            except (AttributeError, NotImplementedError):
                return None, f"no closed-form conjugate of {simple.name}"
            if not q_lo < 0.0 < q_hi:
                return None, (
                    f"the conjugate of {simple.name} is finite only on [{q_lo:g}, {q_hi:g}], "
                    "which no scaling of an approximate dual point reaches"
                )
        gap = cls(energy, simple, composites)
        if gap.anchors is not None and gap.anchors[0] is None:
            return None, "no anchor dual with ⟨A1, λ⟩ of both signs was found"
        return gap, ""

    def restrict(self, keep: np.ndarray, energy: OneLayerEnergy) -> DualityGap:
        """The gap of the problems (rows) ``keep`` of the batch, whose model is ``energy``."""
        other = object.__new__(DualityGap)
        other.__dict__.update(self.__dict__)
        other.energy, other.data = energy, self.data[keep]
        if self.anchors:
            other.anchors = tuple((q[keep], At[keep], mean[keep]) for q, At, mean in self.anchors)
        return other

    # ------------------------------------------------------------------ setup
    def _anchor_search(self, a: np.ndarray, beta: np.ndarray, sign: float) -> np.ndarray | None:
        """q̄ = σ(β + c a) per row with sign(⟨a, q̄ − f⟩) = sign, by doubling |c|; None if none."""
        batch = self.data.shape[0]
        found = np.full(batch, False)
        q_bar = np.zeros_like(self.data)
        c = sign / max(float(np.max(np.abs(a))), np.finfo(np.float64).tiny)
        for _ in range(_ANCHOR_DOUBLINGS):
            q = np.broadcast_to(self.activation.prox(beta + c * a), self.data.shape)
            mean = (q - self.data) @ a
            hit = ~found & (sign * mean > 0)
            q_bar[hit] = q[hit]
            found |= hit
            if found.all():
                return q_bar
            c *= 2.0
        return None

    def _anchors(self):
        """((q̄₋, Aᵀλ̄₋, ⟨1, Aᵀλ̄₋⟩), (q̄₊, …)) for the TV-only case, or (None,) if not found."""
        A = self.energy.A
        beta = np.asarray(self.energy.beta, dtype=np.float64)
        a = np.asarray(A.apply(np.ones((1, A.shape[1]))), dtype=np.float64)[0]
        if not np.any(a):  # ⟨A1, λ⟩ = 0 for every λ: no mixing needed
            return ()
        anchors = []
        for sign in (-1.0, 1.0):
            q_bar = self._anchor_search(a, beta, sign)
            if q_bar is None:
                return (None,)
            At = np.asarray(A.apply_adjoint(q_bar - self.data), dtype=np.float64)
            anchors.append((q_bar, At, At.sum(axis=1)))
        return tuple(anchors)

    # ------------------------------------------------------------------ evaluation
    def feasible_dual(self, q, At_lambda, tv_dual=None):
        """The feasible dual point (q∗ = λ∗ + f, p∗, v∗) built from the solver's multipliers.

        Parameters
        ----------
        q : ndarray (B, m)
            λ + f for the solver's data multiplier λ: a point in the range of σ.
        At_lambda : ndarray (B, n)
            Aᵀλ = Aᵀ(q − f).
        tv_dual : ndarray (B, 2n), optional
            Σ_k p_k of the solver's TV multipliers (needed when J has TV).

        Returns
        -------
        q_star : ndarray (B, m)
            λ∗ + f ∈ dom Φ.
        p_star : ndarray (B, 2n) or None
            The TV dual, ‖p∗‖_{2,∞} ≤ W.
        v_star : ndarray (B, n) or None
            −Aᵀλ∗ − ∇ᵀp∗ ∈ dom s∗ (None without a simple part: then Aᵀλ∗ + ∇ᵀp∗ = 0).
        """
        q = np.asarray(q, dtype=np.float64)
        At_lambda = np.asarray(At_lambda, dtype=np.float64)
        p = None if tv_dual is None else np.asarray(tv_dual, dtype=np.float64)
        v = None
        if self.simple is None:
            q, At_lambda = self._mix_anchor(q, At_lambda)
            p = p + self.gradient.apply(
                self.transform.laplacian_pinv(-At_lambda - self.gradient.apply_adjoint(p))
            )
            theta = np.minimum(1.0, self.weight / np.maximum(self.norm.dual_norm(p), 1e-300))
        else:
            v = -At_lambda
            if self.gradient is not None:
                p = p / np.maximum(1.0, self.norm.dual_norm(p) / self.weight)[:, None]
                v = v - self.gradient.apply_adjoint(p)
            theta = self._scaling(v)
            v = theta[:, None] * v
        q = theta[:, None] * q + (1.0 - theta[:, None]) * self.data
        if p is not None:
            p = theta[:, None] * p
        return q, p, v

    def evaluate(self, u, x, q, At_lambda, tv_dual=None, tv_image=None):
        """(objective P(u), gap G, relative bound) per row, each (B,), for the dual point of
        :meth:`feasible_dual`.

        Parameters
        ----------
        u : ndarray (B, n)
            The primal point (in dom s).
        x : ndarray (B, m)
            A u + β.
        q, At_lambda, tv_dual
            As in :meth:`feasible_dual`.
        tv_image : ndarray (B, 2n), optional
            ∇u (needed when J has TV).
        """
        u, x = np.asarray(u, dtype=np.float64), np.asarray(x, dtype=np.float64)
        q, p, v = self.feasible_dual(q, At_lambda, tv_dual)
        batch = u.shape[0]
        objective = self.energy.data_term(x)
        try:
            gap = self.activation.bregman_terms(q, x).reshape(batch, -1).sum(axis=1)
        except DomainError:  # q left dom Ψ by rounding: no bound from this point
            gap = np.full(batch, np.inf)
        if self.gradient is not None:
            grad_u = np.asarray(tv_image, dtype=np.float64)
            tv_value = self.weight * np.asarray(self.norm(grad_u))
            objective = objective + tv_value
            gap = gap + tv_value - np.einsum("ij,ij->i", p, grad_u)
        if self.simple is not None:
            simple_value = regularizer_rows(self.simple, u, self.energy.input_shape)
            objective = objective + simple_value
            gap = gap + simple_value + self.simple.conjugate(v) - np.einsum("ij,ij->i", v, u)
        gap = np.maximum(gap, 0.0)
        return objective, gap, relative_bound(objective, gap)

    def _mix_anchor(self, q: np.ndarray, At_lambda: np.ndarray):
        """Mix (q, Aᵀλ) with an anchor so that ⟨1, Aᵀλ⟩ = 0 (module docstring)."""
        if not self.anchors:
            return q, At_lambda
        mean = At_lambda.sum(axis=1)
        (q_lo, At_lo, mean_lo), (q_hi, At_hi, mean_hi) = self.anchors
        use_low = mean > 0
        q_bar = np.where(use_low[:, None], q_lo, q_hi)
        At_bar = np.where(use_low[:, None], At_lo, At_hi)
        mean_bar = np.where(use_low, mean_lo, mean_hi)
        t = (mean / (mean - mean_bar))[:, None]  # ∈ [0, 1): mean and mean_bar differ in sign
        return (1.0 - t) * q + t * q_bar, (1.0 - t) * At_lambda + t * At_bar

    def _scaling(self, v: np.ndarray) -> np.ndarray:
        """Largest θ ∈ [0, 1] per row with θ v ∈ dom s∗ entrywise."""
        q_lo, q_hi = self.domain
        with np.errstate(divide="ignore"):
            upper = np.where(v > q_hi, q_hi / np.where(v > 0, v, 1.0), 1.0)
            lower = np.where(v < q_lo, q_lo / np.where(v < 0, v, 1.0), 1.0)
        return np.clip(np.minimum(upper, lower).min(axis=1), 0.0, 1.0)


def guarantee(
    monitor, duality: DualityGap | None, no_gap: str, bound: np.ndarray, evaluated_at: int
) -> dict:
    """The ``Result.stats`` entries that say what a run's stop guarantees.

    ``guarantee`` is ``"duality gap"`` with ``bound`` the relative objective-error bound at the
    returned point (the batch's worst), where the solver evaluated the gap there (at iteration
    ``evaluated_at``); otherwise the entries are left to :func:`~bregmod.solvers._common.finish`
    (``"KKT residual"``, a bound on the residuals, not on the objective error) and
    ``guarantee_note`` says why no gap.
    """
    if duality is None:
        return {"guarantee_note": f"no duality gap: {no_gap}"}
    if monitor.diverged or evaluated_at != monitor.iterations:
        return {"guarantee": None, "bound": None}
    return {"guarantee": "duality gap", "bound": float(np.max(bound))}
