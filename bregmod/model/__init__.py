"""The energies of bregmod's problems, each formula in one place.

Solvers, the exact backend and the theory read the energy from here; none re-derives it.
Modules (filled in by the refactor and the deep-inversion / training work):

* ``onelayer`` — B_Ψ(f, A u + β) + J(u), the one-layer Bregman inversion energy;
* ``lifted``   — the quadratic lifted energy E_Ψ^ρ(u, z) + J(u₀) on {M u = V z};
* ``deep``     — Σ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l), the deep lifted Bregman energy shared by
  deep inversion (states and input free) and lifted training (weights and states free).
"""
