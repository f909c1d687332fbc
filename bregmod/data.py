"""Built-in test images that need no download.

``phantom(n)`` is generated in code at any size; ``camera(n)`` and ``digits()`` use the images
that scikit-image and scikit-learn carry in their wheels (optional extra ``data``).
"""

from __future__ import annotations

import numpy as np

# Modified Shepp–Logan phantom (Toft, 1996): intensity, semi-axes a, b, centre x0, y0,
# rotation angle in degrees. Intensities are additive; the result lies in [0, 1].
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def _check_size(n: int, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {n!r}")
    return int(n)


def phantom(n: int) -> np.ndarray:
    """Modified Shepp–Logan phantom of size ``n × n`` with values in [0, 1].

    The image is the sum of the indicator functions of ten ellipses,
    Σ_k c_k 1{((x − x_k)cos φ_k + (y − y_k)sin φ_k)²/a_k² + (−(x − x_k)sin φ_k +
    (y − y_k)cos φ_k)²/b_k² ≤ 1}, on the square [−1, 1]², rows running top to bottom.

    Parameters
    ----------
    n : int
        Side length in pixels (>= 2).
    """
    n = _check_size(n)
    coords = np.linspace(-1.0, 1.0, n)
    x, y = np.meshgrid(coords, -coords)
    image = np.zeros((n, n))
    for c, a, b, x0, y0, phi in _SHEPP_LOGAN:
        t = np.deg2rad(phi)
        xr = (x - x0) * np.cos(t) + (y - y0) * np.sin(t)
        yr = -(x - x0) * np.sin(t) + (y - y0) * np.cos(t)
        image[(xr / a) ** 2 + (yr / b) ** 2 <= 1.0] += c
    return np.clip(image, 0.0, 1.0)


def camera(n: int = 64) -> np.ndarray:
    """scikit-image's bundled camera image, resized to ``n × n``, values in [0, 1].

    Requires scikit-image (``pip install bregmod[data]``).
    """
    n = _check_size(n)
    try:
        from skimage import data as skdata
        from skimage.transform import resize
    except ImportError:
        raise ImportError(
            "camera() needs scikit-image; install it with `pip install 'bregmod[data]'`"
        ) from None
    return resize(skdata.camera().astype(float) / 255.0, (n, n), anti_aliasing=True)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits: images in [0, 1] of shape (1797, 8, 8) and labels.

    Requires scikit-learn (``pip install bregmod[data]``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "digits() needs scikit-learn; install it with `pip install 'bregmod[data]'`"
        ) from None
    bunch = load_digits()
    return bunch.images / 16.0, bunch.target


IMAGES = {"phantom": phantom, "camera": camera}
"""Test images by name, as used in spec files (``image = "phantom"``)."""


def load_image(name: str, n: int) -> np.ndarray:
    """Return the built-in test image ``name`` (one of :data:`IMAGES`) at size ``n × n``."""
    if name not in IMAGES:
        raise ValueError(f"unknown test image {name!r}; available: {sorted(IMAGES)}")
    return IMAGES[name](n)
