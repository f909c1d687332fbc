import numpy as np
import pytest

from bregmod.data import camera, digits, load_image, phantom
from bregmod.errors import ShapeError
from bregmod.metrics import psnr, ssim


@pytest.mark.parametrize("n", [2, 17, 64, 128])
def test_phantom_any_size_in_unit_range(n):
    p = phantom(n)
    assert p.shape == (n, n)
    assert p.min() >= 0.0 and p.max() <= 1.0


def test_phantom_is_piecewise_constant_with_known_levels():
    p = phantom(128)
    # the outer skull is at intensity 1, the brain at 0.2, the background at 0
    assert p[0, 0] == 0.0
    assert p[64].max() == pytest.approx(1.0)
    assert p[64, 64] == pytest.approx(0.2)
    assert set(np.round(np.unique(p), 6)) <= {0.0, 0.1, 0.2, 0.3, 0.4, 1.0}
    # symmetric about the vertical axis except for the small tumours and rotated ellipses
    assert np.mean(p == p[:, ::-1]) > 0.9


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, "8", True])
def test_phantom_rejects_bad_size(bad):
    with pytest.raises(ValueError, match="integer >= 2"):
        phantom(bad)


def test_camera_and_digits_are_bundled():
    c = camera(32)
    assert c.shape == (32, 32) and 0.0 <= c.min() < c.max() <= 1.0
    images, labels = digits()
    assert images.shape[1:] == (8, 8) and images.max() == 1.0 and len(labels) == len(images)


def test_load_image_by_name():
    assert np.array_equal(load_image("phantom", 16), phantom(16))
    with pytest.raises(ValueError, match="unknown test image 'lena'"):
        load_image("lena", 16)


def test_psnr_closed_form():
    truth = np.zeros((4, 4))
    truth[0, 0] = 1.0
    estimate = truth + 0.1  # MSE = 0.01, range 1 -> 20 dB
    assert psnr(estimate, truth) == pytest.approx(20.0)
    assert psnr(truth, truth) == np.inf


def test_ssim_identity_and_noise():
    rng = np.random.default_rng(0)
    truth = phantom(32)
    assert ssim(truth, truth) == pytest.approx(1.0)
    assert ssim(truth + 0.2 * rng.standard_normal(truth.shape), truth) < 0.9


def test_metric_errors():
    with pytest.raises(ShapeError, match=r"shape \(3,\) but truth has shape \(4,\)"):
        psnr(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="estimate contains NaN"):
        psnr(np.array([np.nan, 1.0]), np.zeros(2))
    with pytest.raises(ShapeError, match="at least 7×7"):
        ssim(np.zeros((4, 4)), np.zeros((4, 4)))
