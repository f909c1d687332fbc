"""The orthonormal 2-D DCT-II, which diagonalises the Neumann forward-difference Laplacian ∇ᵀ∇.

Used by ``admm``'s u-step and by the duality gap (:mod:`bregmod.solvers.gap`) to apply
(ρ_p ∇ᵀ∇ + ρ_v I)⁻¹ and the pseudo-inverse (∇ᵀ∇)⁺ in O(n log n).
"""

from __future__ import annotations

import numpy as np
import scipy.fft


class CosineTransform:
    """The orthonormal 2-D DCT-II T on images of ``shape`` (identity when ``shape`` is None).

    ∇ᵀ∇ = Tᵀ diag(λ) T with λ_ij = 4 sin²(πi/2H) + 4 sin²(πj/2W) for the Neumann
    forward-difference gradient ∇ = :class:`~bregmod.operators.Gradient2D` on H × W images.
    """

    def __init__(self, shape: tuple[int, int] | None) -> None:
        self.shape = shape

    def forward(self, X: np.ndarray) -> np.ndarray:
        """T applied to every row of X (B, n)."""
        if self.shape is None:
            return X
        images = X.reshape(X.shape[0], *self.shape)
        return scipy.fft.dctn(images, type=2, axes=(1, 2), norm="ortho").reshape(X.shape)

    def inverse(self, X: np.ndarray) -> np.ndarray:
        """Tᵀ = T⁻¹ applied to every row of X (B, n)."""
        if self.shape is None:
            return X
        images = X.reshape(X.shape[0], *self.shape)
        return scipy.fft.idctn(images, type=2, axes=(1, 2), norm="ortho").reshape(X.shape)

    def laplacian_eigenvalues(self) -> np.ndarray:
        """Eigenvalues λ (n,) of ∇ᵀ∇ = Tᵀ diag(λ) T for the Neumann forward-difference ∇."""
        H, W = self.shape
        rows = 4.0 * np.sin(np.pi * np.arange(H) / (2 * H)) ** 2
        cols = 4.0 * np.sin(np.pi * np.arange(W) / (2 * W)) ** 2
        return (rows[:, None] + cols[None, :]).ravel()

    def laplacian_pinv(self, R: np.ndarray) -> np.ndarray:
        """(∇ᵀ∇)⁺ R for rows R (B, n): Tᵀ diag(1/λ) T R with the constant mode (λ₀₀ = 0) dropped."""
        eigenvalues = self.laplacian_eigenvalues()
        inverse = np.zeros_like(eigenvalues)
        inverse[1:] = 1.0 / eigenvalues[1:]
        return self.inverse(self.forward(R) * inverse)
