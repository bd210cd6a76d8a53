"""worker/colours.py, similarity.py and sharpness.py against the references they re-implement for
speed: CIELAB, CIEDE2000 and SSIM agree with scikit-image to 1e-3 on photos, noise, greys and
Sharma's table; sharpness and noise with their NumPy definitions."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data as samples
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from worker import colours, sharpness
from worker.quality import _line
from worker.similarity import ssim

SEED = 7  # each test draws from its own generator: the same data whichever tests run


def _reference_lab(pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(rgb2lab(pixels.astype(np.float32) / np.float32(255)), dtype=np.float32)


def _pairs() -> dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    rng = np.random.default_rng(SEED)
    photo = np.asarray(samples.astronaut()[::2, ::2], dtype=np.uint8)
    shifted = np.clip(photo.astype(int) + rng.integers(-25, 25, photo.shape), 0, 255)
    noise = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    grey = np.repeat(rng.integers(0, 256, (96, 128, 1), dtype=np.uint8), 3, axis=2)
    return {
        "photo vs noisy copy": (photo, shifted.astype(np.uint8)),
        "photo vs itself": (photo, photo),
        "noise vs grey": (noise, grey),
        "grey vs grey": (grey, grey[::-1]),
        "black vs white": (np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)),
    }


@pytest.mark.parametrize("name", list(_pairs()))
def test_lab_and_delta_e_equal_scikit_image(name: str) -> None:
    first, second = _pairs()[name]
    lab1, lab2 = colours.to_lab(first), colours.to_lab(second)
    ref1, ref2 = _reference_lab(first), _reference_lab(second)
    assert lab1.dtype == np.float32 and lab1.shape == first.shape
    assert np.abs(lab1 - ref1).max() < 1e-3
    assert np.abs(lab2 - ref2).max() < 1e-3
    ours, theirs = colours.delta_e(ref1, ref2), deltaE_ciede2000(ref1, ref2)
    assert ours.shape == first.shape[:2]
    assert np.abs(ours - theirs).max() < 1e-3


def test_single_colours_and_empty_arrays_keep_their_shapes() -> None:
    lab = colours.to_lab(np.array([[10, 200, 30], [0, 0, 0]], dtype=np.uint8))
    assert lab.shape == (2, 3)
    assert colours.delta_e(lab[0], lab[1]).shape == ()
    assert float(colours.delta_e(lab[0], lab[0])) == 0.0
    assert colours.to_lab(np.zeros((0, 3), dtype=np.uint8)).shape == (0, 3)


def test_ssim_refuses_a_window_that_does_not_fit() -> None:
    tiny = np.zeros((4, 40), dtype=np.uint8)
    with pytest.raises(ValueError, match="window 5"):
        ssim(tiny, tiny, 5, data_range=255)
    with pytest.raises(ValueError, match="window 1"):
        ssim(tiny, tiny, 1, data_range=255)


def test_delta_e_matches_sharmas_published_pairs() -> None:
    # Sharma, Wu, Dalal (2005), table 1: pairs 1, 7, 13, 17, 25 and 34 with their ΔE00.
    pairs = [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((22.7233, 20.0904, -46.694), (23.0331, 14.973, -42.5619), 2.0373),
    ]
    first = np.array([[p[0] for p in pairs]], dtype=np.float32)
    second = np.array([[p[1] for p in pairs]], dtype=np.float32)
    expected = np.array([p[2] for p in pairs], dtype=np.float32)
    assert np.abs(colours.delta_e(first, second)[0] - expected).max() < 2e-3


@pytest.mark.parametrize("name", [name for name in _pairs() if name != "black vs white"])
def test_ssim_equals_scikit_image(name: str) -> None:
    first, second = _pairs()[name]
    gray1, gray2 = (cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in (first, second))
    window = min(7, *gray1.shape) | 1
    mean, full = ssim(gray1, gray2, window, data_range=255)
    ref_mean, ref_map = structural_similarity(
        gray1.astype(np.float32),
        gray2.astype(np.float32),
        data_range=255,
        win_size=window,
        full=True,
    )
    assert mean == pytest.approx(float(ref_mean), abs=1e-5)
    assert np.abs(full - ref_map).max() < 1e-3  # float32 running sums


def test_the_colour_fit_is_numpys_least_squares_line() -> None:
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, 5000).astype(np.float32)
    y = (0.8 * x + 12 + rng.normal(0, 3, x.size)).astype(np.float32)
    slope, offset = _line(x, y)
    ref_slope, ref_offset = np.polyfit(x, y, 1)
    assert slope == pytest.approx(ref_slope, rel=1e-5) and offset == pytest.approx(
        ref_offset, abs=1e-3
    )
    assert _line(np.full(10, 7, np.float32), np.arange(10, dtype=np.float32)) == (0.0, 4.5)


@pytest.mark.parametrize("masked", [False, True])
def test_sharpness_and_noise_are_their_numpy_definitions(masked: bool) -> None:
    gray = np.asarray(samples.camera()[::3, ::3], dtype=np.uint8)
    mask = np.random.default_rng(SEED).random(gray.shape) > 0.3 if masked else None
    inner = np.ones(gray.shape, bool) if mask is None else mask.copy()
    inner[[0, -1], :] = inner[:, [0, -1]] = False  # border pixels are extrapolated: left out
    lap = cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F, ksize=1)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = np.abs(cv2.filter2D(gray.astype(np.float64), cv2.CV_64F, kernel))
    expected_sharpness = lap[inner].var() / gray.astype(np.float64)[inner].var()
    expected_noise = np.sqrt(np.pi / 2) / 6 * response[inner].mean()
    assert sharpness.sharpness(gray, mask) == pytest.approx(expected_sharpness, rel=1e-5)
    assert sharpness.noise(gray, mask) == pytest.approx(expected_noise, rel=1e-5)
    assert sharpness.sharpness(gray, np.zeros(gray.shape, bool)) == 0.0
    assert sharpness.noise(gray[:2, :2]) == 0.0
