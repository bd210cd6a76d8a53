"""The camera change between two frames: ORB features, a RANSAC homography, and its parts.

Both frames are grayscale at a reduced size (worker/quality.py decodes them). The homography maps
turn n-1's pixels onto turn n's; it is reported in units that do not depend on the pixel size, so a
2K -> 4K turn of the same scene is the identity: coordinates are divided by each frame's height.

- `scale`: how much bigger the scene looks (1.0 = same; 1.1 = zoomed in 10 %).
- `shift`: how far turn n-1's centre moved, as a fraction of the frame (larger of the two axes).
- `rotation_deg`: the roll of the camera.
- `aspect`: the stretch of the content (1.0 = none; 1.05 = 5 % wider than tall against before).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

ORB_FEATURES = 500
# Flat synthetic scenes (and painted walls) have few corners; a low FAST threshold still finds some.
ORB_FAST_THRESHOLD = 8
MIN_MATCHES = 12
MIN_INLIERS = 10
RANSAC_REPROJECTION_PX = 3.0
# A homography outside these is a degenerate fit (features matched by chance), not a camera.
PLAUSIBLE_SCALE = (0.2, 5.0)

cv2.setNumThreads(1)  # a worker process runs one turn per slot; threads would only contend

Gray = NDArray[np.uint8]
Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Camera:
    """The camera change from turn n-1 to turn n (identity when nothing moved)."""

    aligned: bool  # False: too few features matched to say anything about the framing
    inliers: int = 0
    scale: float = 1.0
    shift: float = 0.0
    rotation_deg: float = 0.0
    aspect: float = 1.0
    homography: Matrix | None = None  # pixels of the previous frame -> pixels of the current

    def numbers(self) -> dict[str, float]:
        """The stored metrics (rounded)."""
        return {
            "aligned": 1.0 if self.aligned else 0.0,
            "inliers": float(self.inliers),
            "scale": round(self.scale, 4),
            "shift": round(self.shift, 4),
            "rotation_deg": round(self.rotation_deg, 3),
            "aspect": round(self.aspect, 4),
        }


_PACKED = np.dtype([("point", np.float32, 2), ("descriptor", np.uint8, 32)])


@dataclass(frozen=True)
class Features:
    """One frame's ORB keypoints (pixel coordinates) and their 32-byte descriptors. A frame's
    features depend on its pixels alone, so they are computed once per image and kept
    (worker/results.py stores them beside the decoded pixels)."""

    points: NDArray[np.float32]  # (N, 2)
    descriptors: NDArray[np.uint8]  # (N, 32); N may be 0

    def packed(self) -> NDArray[np.void]:
        """One array to store (np.save)."""
        table = np.empty(len(self.points), dtype=_PACKED)
        table["point"], table["descriptor"] = self.points, self.descriptors
        return table

    @classmethod
    def unpacked(cls, table: NDArray[np.void]) -> Features:
        """The features `packed` stored; ValueError when `table` is not such an array."""
        if table.dtype != _PACKED or table.ndim != 1:
            raise ValueError(f"not packed ORB features: {table.dtype}")
        return cls(np.ascontiguousarray(table["point"]), np.ascontiguousarray(table["descriptor"]))


def features(gray: Gray) -> Features:
    """The frame's ORB features (at most ORB_FEATURES)."""
    orb = cv2.ORB.create(nfeatures=ORB_FEATURES, fastThreshold=ORB_FAST_THRESHOLD)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    points = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
    if descriptors is None:
        return Features(points[:0], np.zeros((0, 32), dtype=np.uint8))
    return Features(points, np.asarray(descriptors, dtype=np.uint8))


def homography(previous: Features, current: Features) -> tuple[Matrix, int] | None:
    """The RANSAC homography previous -> current (pixels) and its inlier count, or None."""
    if not len(previous.descriptors) or not len(current.descriptors):
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    matches = matcher.match(previous.descriptors, current.descriptors)
    if len(matches) < MIN_MATCHES:
        return None
    src = previous.points[[m.queryIdx for m in matches]].reshape(-1, 1, 2)
    dst = current.points[[m.trainIdx for m in matches]].reshape(-1, 1, 2)
    matrix, inlier_mask = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_REPROJECTION_PX)
    if matrix is None or inlier_mask is None:
        return None
    inliers = int(inlier_mask.sum())
    if inliers < MIN_INLIERS:
        return None
    found: Matrix = np.asarray(matrix, dtype=np.float64)
    return found, inliers


def _normalised(matrix: Matrix, prev_height: int, cur_height: int) -> Matrix:
    """The homography in height units of each frame (so pixel size drops out)."""
    to_prev_px = np.diag([float(prev_height), float(prev_height), 1.0])
    to_cur_units = np.diag([1.0 / cur_height, 1.0 / cur_height, 1.0])
    result: Matrix = to_cur_units @ matrix @ to_prev_px
    normalised: Matrix = result / result[2, 2]
    return normalised


def decompose(
    matrix: Matrix, prev_size: tuple[int, int], cur_size: tuple[int, int], inliers: int
) -> Camera:
    """Scale, shift, rotation and stretch of a pixel homography between frames of these sizes."""
    with np.errstate(all="ignore"):  # a degenerate fit gives inf/NaN, refused by the caller
        return _decompose(matrix, prev_size, cur_size, inliers)


def _decompose(
    matrix: Matrix, prev_size: tuple[int, int], cur_size: tuple[int, int], inliers: int
) -> Camera:
    norm = _normalised(matrix, prev_size[1], cur_size[1])
    linear = norm[:2, :2]
    scale = math.sqrt(abs(float(np.linalg.det(linear))))
    rotation = math.degrees(math.atan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1]))
    aspect = float(np.linalg.norm(linear[:, 0])) / max(float(np.linalg.norm(linear[:, 1])), 1e-9)
    prev_centre = np.array([prev_size[0] / prev_size[1] / 2, 0.5, 1.0])
    mapped = norm @ prev_centre
    cur_w = cur_size[0] / cur_size[1]
    dx = (mapped[0] / mapped[2] - cur_w / 2) / cur_w
    dy = mapped[1] / mapped[2] - 0.5
    return Camera(
        aligned=True,
        inliers=inliers,
        scale=scale,
        shift=float(max(abs(dx), abs(dy))),
        rotation_deg=rotation,
        aspect=aspect,
        homography=matrix,
    )


def camera_change(
    previous: Gray, current: Gray, known: tuple[Features, Features] | None = None
) -> Camera:
    """The camera change from `previous` to `current` (grayscale, reduced size); `known`: their
    features when they were computed before."""
    pair = known if known is not None else (features(previous), features(current))
    found = homography(*pair)
    if found is None:
        return Camera(aligned=False)
    matrix, inliers = found
    prev_size = (previous.shape[1], previous.shape[0])
    cur_size = (current.shape[1], current.shape[0])
    return plausible(decompose(matrix, prev_size, cur_size, inliers))


def plausible(camera: Camera) -> Camera:
    """The camera, or "not aligned" when the fit is degenerate (non-finite, absurd scale)."""
    numbers = (camera.scale, camera.shift, camera.rotation_deg, camera.aspect)
    low, high = PLAUSIBLE_SCALE
    if not all(math.isfinite(n) for n in numbers) or not low <= camera.scale <= high:
        return Camera(aligned=False)
    return camera


def rescaled(matrix: Matrix, into: float, out: float) -> Matrix:
    """The homography for other pixel sizes: `into` maps the new previous-frame pixels to the
    matrix's, `out` maps the matrix's current-frame pixels to the new ones."""
    result: Matrix = np.diag([out, out, 1.0]) @ matrix @ np.diag([into, into, 1.0])
    return result


def warp(image: NDArray[np.uint8], matrix: Matrix, size: tuple[int, int]) -> NDArray[np.uint8]:
    """`image` (previous frame) drawn in the current frame's pixels; uncovered pixels are 0."""
    warped = cv2.warpPerspective(image, matrix, size, flags=cv2.INTER_LINEAR)
    return np.asarray(warped, dtype=np.uint8)


def coverage(
    matrix: Matrix, prev_size: tuple[int, int], size: tuple[int, int]
) -> NDArray[np.bool_]:
    """The current frame's pixels that the warped previous frame covers."""
    ones = np.full((prev_size[1], prev_size[0]), 255, dtype=np.uint8)
    covered = np.asarray(cv2.warpPerspective(ones, matrix, size, flags=cv2.INTER_NEAREST))
    result: NDArray[np.bool_] = covered == 255
    return result
