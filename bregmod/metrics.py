"""Image quality measures against a known ground truth."""

from __future__ import annotations

import numpy as np

from bregmod._checks import finite_array
from bregmod.errors import ShapeError


def _pair(estimate, truth) -> tuple[np.ndarray, np.ndarray]:
    estimate = finite_array(estimate, "estimate")
    truth = finite_array(truth, "truth")
    if estimate.shape != truth.shape:
        raise ShapeError(f"estimate has shape {estimate.shape} but truth has shape {truth.shape}")
    return estimate, truth


def psnr(estimate, truth, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio 10 log₁₀(R² / MSE) in dB.

    Parameters
    ----------
    estimate, truth : array_like
        Images of the same shape.
    data_range : float, optional
        R; defaults to max(truth) − min(truth) (1 if the truth is constant).
    """
    estimate, truth = _pair(estimate, truth)
    if data_range is None:
        data_range = float(truth.max() - truth.min()) or 1.0
    mse = float(np.mean((estimate - truth) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * np.log10(data_range**2 / mse)


def ssim(estimate, truth, data_range: float | None = None) -> float:
    """Structural similarity index (Wang et al. 2004) via scikit-image.

    Requires scikit-image (``pip install bregmod[data]``); images must be 2-D (after removing
    singleton axes) and at least 7×7.
    """
    estimate, truth = _pair(estimate, truth)
    estimate, truth = np.squeeze(estimate), np.squeeze(truth)  # e.g. a grey (1, H, W) image
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise ImportError(
            "ssim() needs scikit-image; install it with `pip install 'bregmod[data]'`"
        ) from None
    if estimate.ndim != 2 or min(estimate.shape) < 7:
        raise ShapeError(f"ssim needs a 2-D image of at least 7×7 pixels, got {estimate.shape}")
    if data_range is None:
        data_range = float(truth.max() - truth.min()) or 1.0
    return float(structural_similarity(estimate, truth, data_range=data_range))
