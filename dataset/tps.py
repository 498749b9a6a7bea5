"""Thin-plate-spline (TPS) warps with numpy and OpenCV.

A 2-D thin-plate spline through control points c_i with targets v_i is
    f(p) = a_0 + a_1 x + a_2 y + sum_i w_i U(|p - c_i|),   U(r) = r^2 log r^2,
whose coefficients solve the linear system [[K, P], [P^T, 0]] [w; a] = [v; 0] with
K_ij = U(|c_i - c_j|) and P_i = (1, x_i, y_i).

STCN/MiVOS static-image pre-training warps a synthetic frame, with probability 1/3, by a TPS
with 12 random control points whose displacements are normal with a scale of 0.02 times the
image size. Control points live in normalised coordinates ([0, 1] along x and y). The warp
moves the content at ``source`` points onto ``target`` points: each output pixel q samples
the input at g(q), where g is the spline that maps the targets back onto the sources.
The image and its masks go through the very same sampling map, so they stay aligned
(image bilinear, masks nearest).
"""
import cv2
import numpy as np

__all__ = ["ThinPlateSpline", "tps_sampling_maps", "tps_warp", "random_tps_warp"]


def _kernel(squared_dist):
    """U(r) = r^2 log r^2 evaluated from r^2 (0 at r = 0)."""
    out = np.zeros_like(squared_dist)
    positive = squared_dist > 0
    out[positive] = squared_dist[positive] * np.log(squared_dist[positive])
    return out


class ThinPlateSpline:
    """Interpolating 2-D TPS mapping ``points`` exactly onto ``values`` (both N x 2)."""

    def __init__(self, points, values, regularization=0.0):
        points = np.asarray(points, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape != values.shape:
            raise ValueError(f"control points must be N x 2 pairs, got {points.shape} and {values.shape}")
        if len(points) < 3:
            raise ValueError(f"a thin-plate spline needs at least 3 control points, got {len(points)}")
        n = len(points)
        diff = points[:, None, :] - points[None, :, :]
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = _kernel((diff ** 2).sum(-1)) + regularization * np.eye(n)
        system[:n, n] = 1.0
        system[:n, n + 1:] = points
        system[n, :n] = 1.0
        system[n + 1:, :n] = points.T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = values
        try:
            coef = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:   # e.g. collinear points: least-squares solution
            coef = np.linalg.lstsq(system, rhs, rcond=None)[0]
        self.points = points
        self.weights = coef[:n]
        self.affine = coef[n:]

    def __call__(self, query):
        """Map M x 2 query points."""
        query = np.asarray(query, dtype=np.float64)
        squared = ((query[:, None, :] - self.points[None, :, :]) ** 2).sum(-1)
        return self.affine[0] + query @ self.affine[1:] + _kernel(squared) @ self.weights


def tps_sampling_maps(height, width, source, target):
    """cv2.remap maps (float32 H x W each) of the warp moving normalised ``source`` onto ``target``."""
    spline = ThinPlateSpline(target, source)
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    scale = np.array([max(width - 1, 1), max(height - 1, 1)], dtype=np.float64)
    query = np.stack([xs.ravel(), ys.ravel()], axis=1) / scale
    sampled = spline(query) * scale
    map_x = sampled[:, 0].reshape(height, width).astype(np.float32)
    map_y = sampled[:, 1].reshape(height, width).astype(np.float32)
    return map_x, map_y


def tps_warp(image, masks, source, target, fill=0):
    """Warp ``image`` (H x W [x C]) and every mask in ``masks`` (list of H x W label maps).

    Pixels that come from outside the input take ``fill`` (image) and 0 (masks).
    Returns (warped image, list of warped masks).
    """
    height, width = image.shape[:2]
    map_x, map_y = tps_sampling_maps(height, width, source, target)
    border_value = fill if np.isscalar(fill) else tuple(float(v) for v in fill)
    warped = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    warped_masks = [cv2.remap(m, map_x, map_y, interpolation=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0) for m in masks]
    return warped, warped_masks


def random_tps_warp(image, masks, rng, num_points=12, std=0.02, fill=0):
    """The pre-training TPS: ``num_points`` (12) uniform control points, displacements N(0, std=0.02)."""
    source = rng.uniform(0.0, 1.0, size=(num_points, 2))
    target = source + rng.normal(0.0, std, size=(num_points, 2))
    return tps_warp(image, masks, source, target, fill=fill)
