"""Image + mask augmentation primitives (numpy / OpenCV), driven by an explicit numpy Generator.

Every random choice takes ``rng`` (a ``numpy.random.Generator``), so a training sample is a pure
function of its seed: data loading is reproducible across worker counts and on resume.
Images are H x W x 3 uint8 RGB; masks are H x W uint8 label maps. Geometric operations apply one
sampling map to the image (bilinear) and to every mask (nearest), which keeps them aligned.

The ranges quoted in the pipelines are those of STCN's appendix F.3 (which follows MiVOS).
"""
import math

import cv2
import numpy as np

__all__ = [
    "IMAGE_FILL",
    "affine_matrix",
    "random_affine_matrix",
    "warp_affine",
    "color_jitter",
    "random_grayscale",
    "hflip",
    "random_resized_crop_box",
]

# Fill colour for pixels that enter the frame from outside: the ImageNet mean in 0..255.
IMAGE_FILL = (124, 116, 104)


def affine_matrix(center, angle=0.0, scale=1.0, shear=0.0, translate=(0.0, 0.0)):
    """Forward 2 x 3 matrix: rotate by ``angle`` degrees, x-shear by ``shear`` degrees and
    scale by ``scale`` about ``center`` (x, y), then translate by ``translate`` pixels."""
    a = math.radians(angle)
    s = math.radians(shear)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shearing = np.array([[1.0, math.tan(s)], [0.0, 1.0]])
    linear = scale * rotation @ shearing
    cx, cy = center
    offset = np.array([cx + translate[0], cy + translate[1]]) - linear @ np.array([cx, cy])
    return np.concatenate([linear, offset[:, None]], axis=1)


def random_affine_matrix(rng, size, degrees=0.0, scale=(1.0, 1.0), shear=0.0):
    """Random affine about the image centre: angle U[-degrees, degrees], scale U[scale],
    x-shear U[-shear, shear] (torchvision RandomAffine ranges). ``size`` is (H, W)."""
    height, width = size
    angle = rng.uniform(-degrees, degrees) if degrees else 0.0
    factor = rng.uniform(*scale) if scale[0] != scale[1] else float(scale[0])
    shear_deg = rng.uniform(-shear, shear) if shear else 0.0
    return affine_matrix(((width - 1) / 2.0, (height - 1) / 2.0), angle, factor, shear_deg)


def warp_affine(image, masks, matrix, out_size=None, fill=IMAGE_FILL):
    """Apply a 2 x 3 forward ``matrix`` to the image (bilinear) and the masks (nearest)."""
    height, width = image.shape[:2] if out_size is None else out_size
    border = tuple(float(v) for v in fill) if not np.isscalar(fill) else float(fill)
    out = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    out_masks = [cv2.warpAffine(m, matrix, (width, height), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0) for m in masks]
    return out, out_masks


def _grayscale(image_f):
    return image_f @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _adjust_hue(image_u8, shift):
    hsv = cv2.cvtColor(image_u8, cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(round(shift * 255))) % 256
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def color_jitter(image, rng, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
    """torchvision-style ColorJitter: factors U[1-b, 1+b] etc., hue shift U[-hue, hue],
    applied in a random order."""
    ops = []
    if brightness:
        ops.append(("brightness", rng.uniform(1 - brightness, 1 + brightness)))
    if contrast:
        ops.append(("contrast", rng.uniform(1 - contrast, 1 + contrast)))
    if saturation:
        ops.append(("saturation", rng.uniform(1 - saturation, 1 + saturation)))
    if hue:
        ops.append(("hue", rng.uniform(-hue, hue)))
    out = image
    for i in rng.permutation(len(ops)):
        name, value = ops[i]
        if name == "hue":
            out = _adjust_hue(out, value)
            continue
        f = out.astype(np.float32)
        if name == "brightness":
            f = f * value
        elif name == "contrast":
            f = _grayscale(f).mean() * (1 - value) + f * value
        else:
            f = _grayscale(f)[..., None] * (1 - value) + f * value
        out = np.clip(f + 0.5, 0, 255).astype(np.uint8)
    return out


def random_grayscale(image, rng, p=0.05):
    """With probability ``p`` replace the image by its luma on all three channels."""
    if rng.random() >= p:
        return image
    gray = np.clip(_grayscale(image.astype(np.float32)) + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def hflip(image, masks):
    """Mirror the image and every mask left-right (contiguous copies)."""
    return np.ascontiguousarray(image[:, ::-1]), [np.ascontiguousarray(m[:, ::-1]) for m in masks]


def random_resized_crop_box(rng, size, scale=(0.36, 1.0), ratio=(0.75, 1.25)):
    """torchvision RandomResizedCrop box (y, x, h, w) for an image of ``size`` (H, W):
    area fraction U[scale], log-uniform aspect ratio in ``ratio``; 10 tries, then a centre crop."""
    height, width = size
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            y = int(rng.integers(0, height - h + 1))
            x = int(rng.integers(0, width - w + 1))
            return y, x, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
