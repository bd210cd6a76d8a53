"""CIELAB and CIEDE2000 colour distances, computed the way scikit-image's `rgb2lab` and
`deltaE_ciede2000` compute them (CIELAB under D65 from sRGB; Sharma, Wu and Dalal's CIEDE2000)
in float32 with fewer passes: 3.3x and 2.1x faster on a 256 x 256 map, equal to 1e-3 (the tests
hold them to scikit-image; ΔE2000 itself jumps where two hues are exactly 180 degrees apart, and
there float32 rounding may land a pair on the other side of the jump). Which colour a prompt
names is read in shared/verdicts.py (`named_colour`), where `editqueue status` reaches it without
NumPy.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from shared.verdicts import Rgb

FloatArray = NDArray[np.float32]
F = np.float32

_SRGB = np.arange(256, dtype=np.float64) / 255.0
# sRGB -> linear light, exact for each 8-bit value (scikit-image's gamma).
_LINEAR = np.where(_SRGB > 0.04045, ((_SRGB + 0.055) / 1.055) ** 2.4, _SRGB / 12.92).astype(F)
_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])  # CIE 1931 2-degree observer
_XYZN_FROM_RGB = (_XYZ_FROM_RGB / _D65_WHITE[:, None]).astype(F)  # X/Xn, Y/Yn, Z/Zn
_LAB_FROM_F = np.array([[0, 116, 0, -16], [500, -500, 0, 0], [0, 200, -200, 0]], dtype=F)
_LAB_EPSILON = F(0.008856)
_25_POW_7 = F(25.0**7)
_TAU = F(2 * np.pi)
_PI = F(np.pi)


def to_lab(pixels: NDArray[np.uint8]) -> FloatArray:
    """CIELAB (D65) of sRGB pixels of shape (..., 3)."""
    if pixels.size == 0:
        return np.zeros(pixels.shape, dtype=F)
    linear = _LINEAR[pixels].reshape(-1, 1, 3)
    xyz = cv2.transform(linear, _XYZN_FROM_RGB)
    f = np.cbrt(xyz)
    dark = xyz <= _LAB_EPSILON
    f[dark] = xyz[dark] * F(7.787) + F(16 / 116)
    lab = cv2.transform(f, _LAB_FROM_F)
    return np.asarray(lab, dtype=F).reshape(*pixels.shape[:-1], 3)


def _pow7(x: FloatArray) -> FloatArray:
    x2 = x * x  # NumPy's float32 `** 7` is a generic pow: 250x slower than four products
    return np.asarray(x2 * x2 * x2 * x, dtype=F)


def _chroma(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.sqrt(a * a + b * b)


def _hue(b: FloatArray, a: FloatArray) -> FloatArray:
    h = np.arctan2(b, a)
    np.add(h, _TAU, out=h, where=h < 0)
    return h


def _mean_hue(h1: FloatArray, h2: FloatArray, grey: NDArray[np.bool_]) -> FloatArray:
    """The mean of two hues on the circle (their sum where either colour is grey)."""
    mean = h1 + h2
    apart = (np.abs(h1 - h2) > _PI) & ~grey
    low = mean < _TAU
    np.add(mean, _TAU, out=mean, where=apart & low)
    np.subtract(mean, _TAU, out=mean, where=apart & ~low)
    np.multiply(mean, F(0.5), out=mean, where=~grey)
    return mean


def _hue_difference(h1: FloatArray, h2: FloatArray, grey: NDArray[np.bool_]) -> FloatArray:
    dh = h2 - h1
    np.subtract(dh, _TAU, out=dh, where=dh > _PI)
    np.add(dh, _TAU, out=dh, where=dh < -_PI)
    dh[grey] = 0
    return dh


def delta_e(lab1: FloatArray, lab2: FloatArray) -> FloatArray:
    """Per-pixel CIEDE2000 (kL = kC = kH = 1) of two Lab arrays of the same shape (..., 3)."""
    shape = lab1.shape[:-1]
    first, second = lab1.reshape(-1, 3), lab2.reshape(-1, 3)  # 1-D: ufuncs keep arrays
    l1, a1, b1 = (first[:, i].astype(F) for i in range(3))
    l2, a2, b2 = (second[:, i].astype(F) for i in range(3))
    c7 = _pow7((_chroma(a1, b1) + _chroma(a2, b2)) * F(0.5))
    one_plus_g = F(1.5) - F(0.5) * np.sqrt(c7 / (c7 + _25_POW_7))
    a1p, a2p = a1 * one_plus_g, a2 * one_plus_g
    c1p, c2p = _chroma(a1p, b1), _chroma(a2p, b2)
    h1, h2 = _hue(b1, a1p), _hue(b2, a2p)
    product = c1p * c2p
    grey = product == 0
    big_dh = F(2) * np.sqrt(product) * np.sin(_hue_difference(h1, h2, grey) * F(0.5))
    hbar = _mean_hue(h1, h2, grey)
    t = (
        F(1)
        - F(0.17) * np.cos(hbar - F(np.radians(30)))
        + F(0.24) * np.cos(F(2) * hbar)
        + F(0.32) * np.cos(F(3) * hbar + F(np.radians(6)))
        - F(0.20) * np.cos(F(4) * hbar - F(np.radians(63)))
    )
    lbar = (l1 + l2) * F(0.5) - F(50)
    lbar2 = lbar * lbar
    sl = F(1) + F(0.015) * lbar2 / np.sqrt(F(20) + lbar2)
    cbar = (c1p + c2p) * F(0.5)
    sc = F(1) + F(0.045) * cbar
    sh = F(1) + F(0.015) * cbar * t
    cp7 = _pow7(cbar)
    z = (hbar - F(np.radians(275))) * F(1 / np.radians(25))
    rt = -np.sin(F(np.radians(60)) * np.exp(-(z * z))) * F(2) * np.sqrt(cp7 / (cp7 + _25_POW_7))
    dl, dc, dh = (l2 - l1) / sl, (c2p - c1p) / sc, big_dh / sh
    distance = np.sqrt(dl * dl + dc * dc + dh * dh + rt * dc * dh)
    return np.asarray(distance, dtype=F).reshape(shape)


def delta_e_to(labs: FloatArray, colour: Rgb) -> float:
    """CIEDE2000 between the median Lab of some pixels (shape (N, 3)) and an sRGB colour."""
    target = to_lab(np.array([[colour]], dtype=np.uint8))[0, 0]
    median = np.median(labs, axis=0).astype(F)
    return float(delta_e(median[None, :], target[None, :])[0])
