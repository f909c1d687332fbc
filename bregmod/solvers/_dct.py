"""The orthonormal 2-D DCT-II, which diagonalises the Neumann forward-difference Laplacian ∇ᵀ∇.

Used by ``admm``'s u-step and by the duality gap (:mod:`bregmod.solvers.gap`) to apply
(ρ_p ∇ᵀ∇ + ρ_v I)⁻¹ and the pseudo-inverse (∇ᵀ∇)⁺: in O(n log n) by the FFT, or for small
images by two small matrix products (:data:`MATRIX_PIXELS`).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.fft

#: Images of at most this many pixels are transformed by two small matrix products
#: C_H X C_Wᵀ (C the orthonormal DCT-II matrix): at 32 × 32 about 7 µs against 16 µs for
#: ``scipy.fft.dctn``, whose fixed Python overhead dominates small transforms, and 0.22 ms
#: against 0.42 ms for 64 images; larger images use the O(n log n) FFT (at 64 × 64 the two
#: take 48–49 µs for 2 images, but for 64 images the matrix form took 3.6 ms against 1.4 ms).
MATRIX_PIXELS = 32 * 32
#: The FFT uses the ``workers`` threads it is given only for at least this many entries in
#: all (128 images of 64 × 64: 1.6 ms on 2 threads against 2.9 ms on one; for 1–3 images a
#: second thread made it 1–3× slower).
PARALLEL_ENTRIES = 2**18


class CosineTransform:
    """The orthonormal 2-D DCT-II T on images of ``shape`` (identity when ``shape`` is None).

    ∇ᵀ∇ = Tᵀ diag(λ) T with λ_ij = 4 sin²(πi/2H) + 4 sin²(πj/2W) for the Neumann
    forward-difference gradient ∇ = :class:`~bregmod.operators.Gradient2D` on H × W images.
    T X = C_H X C_Wᵀ with C_N the N × N orthonormal DCT-II matrix, computed so for images of
    at most :data:`MATRIX_PIXELS` pixels and by ``scipy.fft`` otherwise.
    """

    def __init__(self, shape: tuple[int, int] | None) -> None:
        self.shape = shape
        self._matrices: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

    def _dct_matrices(self, dtype) -> tuple[np.ndarray, np.ndarray] | None:
        """(C_H, C_W) in ``dtype`` for small images, None for the FFT."""
        if self.shape[0] * self.shape[1] > MATRIX_PIXELS:
            return None
        dtype = np.dtype(dtype)
        if dtype not in self._matrices:
            self._matrices[dtype] = tuple(
                scipy.fft.dct(np.eye(N), type=2, norm="ortho", axis=0).astype(dtype)
                for N in self.shape
            )
        return self._matrices[dtype]

    def forward(self, X: np.ndarray, workers: int = 1) -> np.ndarray:
        """T applied to every row of X (B, n), the FFT on up to ``workers`` threads (used from
        :data:`PARALLEL_ENTRIES` entries on)."""
        if self.shape is None:
            return X
        images = X.reshape(X.shape[0], *self.shape)
        matrices = self._dct_matrices(X.dtype)
        if matrices is not None:
            return np.matmul(np.matmul(matrices[0], images), matrices[1].T).reshape(X.shape)
        return scipy.fft.dctn(
            images, type=2, axes=(1, 2), norm="ortho", workers=_workers(X, workers)
        ).reshape(X.shape)

    def inverse(self, X: np.ndarray, workers: int = 1) -> np.ndarray:
        """Tᵀ = T⁻¹ applied to every row of X (B, n), threads as in :meth:`forward`."""
        if self.shape is None:
            return X
        images = X.reshape(X.shape[0], *self.shape)
        matrices = self._dct_matrices(X.dtype)
        if matrices is not None:
            return np.matmul(np.matmul(matrices[0].T, images), matrices[1]).reshape(X.shape)
        return scipy.fft.idctn(
            images, type=2, axes=(1, 2), norm="ortho", workers=_workers(X, workers)
        ).reshape(X.shape)

    def laplacian_eigenvalues(self) -> np.ndarray:
        """Eigenvalues λ (n,) of ∇ᵀ∇ = Tᵀ diag(λ) T for the Neumann forward-difference ∇."""
        H, W = self.shape
        rows = 4.0 * np.sin(np.pi * np.arange(H) / (2 * H)) ** 2
        cols = 4.0 * np.sin(np.pi * np.arange(W) / (2 * W)) ** 2
        return (rows[:, None] + cols[None, :]).ravel()

    @cached_property
    def _pinv_eigenvalues(self) -> np.ndarray:
        """1/λ with the constant mode's 1/λ₀₀ replaced by 0."""
        eigenvalues = self.laplacian_eigenvalues()
        inverse = np.zeros_like(eigenvalues)
        inverse[1:] = 1.0 / eigenvalues[1:]
        return inverse

    def laplacian_pinv(self, R: np.ndarray) -> np.ndarray:
        """(∇ᵀ∇)⁺ R for rows R (B, n): Tᵀ diag(1/λ) T R with the constant mode (λ₀₀ = 0) dropped."""
        return self.inverse(self.forward(R) * self._pinv_eigenvalues)


def _workers(X: np.ndarray, workers: int) -> int:
    """The FFT's thread count for X: ``workers`` from :data:`PARALLEL_ENTRIES` entries on."""
    return workers if X.size >= PARALLEL_ENTRIES else 1
