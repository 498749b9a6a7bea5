"""Seeded synthetic videos of textured shapes for tests, benchmarks and smoke training.

Each object is a textured ellipse, rectangle or triangle that moves, rotates and breathes in scale;
objects occlude each other (fixed depth order), some bounce inside the frame while others cross an
edge, leave the frame and come back from the opposite side; an object may enter the scene late.

Frames are generated lazily from closed-form motion, so a 10 000-frame video costs no memory:

    video = SyntheticVideo(seed=0, height=64, width=96, num_objects=2, length=50)
    rgb, labels = video.frame(7)          # uint8 HxWx3 RGB, uint8 HxW label map (0 = background)
    for rgb, labels in video: ...         # every frame in order
    for rgb in video.frames(): ...        # RGB only (what a segmenter receives)

Label ids default to 1..num_objects; pass ``object_ids=(3, 7)`` for non-consecutive ids and
``first_frames=(0, 10)`` to make object 7 appear at frame 10; ``shapes`` limits the categories
(``video.categories`` maps each label to its shape). ``edge_crossers=K`` makes the last K objects
(the default: the last one, when there are two or more) the ones that leave the view across the left
or right edge and re-enter from the other side, again and again in a long video; ``deform=A`` bends
every outline non-rigidly over time (radius modulated by up to +-A; 0 keeps shapes rigid). Every object covers at least
``min_visible_fraction`` of the frame at its first frame, so a first-frame annotation always holds
it (at frame 0 for the DAVIS protocol; at its own first frame for YouTubeVOS).
"""
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np

from util.palette import write_label_png

SHAPES = ("ellipse", "rectangle", "triangle")
VOID_LABEL = 255  # DAVIS marks void pixels with 255, so it cannot be an object id
MAX_PLACEMENT_TRIES = 200


class SyntheticVideo:
    """A lazily generated video: ``frame(t)`` returns ``(rgb, labels)`` for 0 <= t < length."""

    def __init__(self, seed, height, width, num_objects, length, *, object_ids=None,
                 first_frames=None, noise=4, min_visible_fraction=0.01, shapes=SHAPES, edge_crossers=None,
                 deform=0.0):
        if height < 8 or width < 8:
            raise ValueError(f"frame size {height}x{width} is too small; use at least 8x8")
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        if num_objects < 1:
            raise ValueError(f"num_objects must be at least 1, got {num_objects}")
        ids = tuple(range(1, num_objects + 1)) if object_ids is None else tuple(int(i) for i in object_ids)
        if len(ids) != num_objects or len(set(ids)) != num_objects:
            raise ValueError(f"object_ids {object_ids} must be {num_objects} distinct ids")
        if not shapes or any(shape not in SHAPES for shape in shapes):
            raise ValueError(f"shapes {shapes} must be a non-empty subset of {SHAPES}")
        if any(not 1 <= i < VOID_LABEL for i in ids):
            raise ValueError(f"object_ids {ids} must lie in 1..{VOID_LABEL - 1}")
        if edge_crossers is not None and not 0 <= edge_crossers <= num_objects:
            raise ValueError(f"edge_crossers {edge_crossers} must lie in 0..{num_objects}")
        if not 0 <= deform < 0.5:
            raise ValueError(f"deform {deform} must lie in [0, 0.5)")
        starts = (0,) * num_objects if first_frames is None else tuple(int(f) for f in first_frames)
        if len(starts) != num_objects or any(not 0 <= f < length for f in starts):
            raise ValueError(f"first_frames {first_frames} must give one frame in 0..{length - 1} per object")

        self.seed = int(seed)
        self.height, self.width, self.length = int(height), int(width), int(length)
        self.object_ids = ids
        self.first_frames = dict(zip(ids, starts))
        self.noise = int(noise)
        self._shapes = tuple(shapes)
        # default: only the last object crosses the edge (and only when there are two or more)
        self._edge_crossers = (1 if num_objects > 1 else 0) if edge_crossers is None else int(edge_crossers)
        self._deform = float(deform)
        self._min_visible = max(4, int(min_visible_fraction * height * width))
        self._ys, self._xs = np.mgrid[0:height, 0:width].astype(np.float32)
        rng = np.random.default_rng([self.seed, 0x5EED])
        self._background = _random_background(rng, height, width)
        self._objects = self._place_objects(rng)

    # ------------------------------------------------------------------ public API
    def __len__(self):
        return self.length

    def __iter__(self):
        for t in range(self.length):
            yield self.frame(t)

    def frames(self):
        """Iterate over the RGB frames only."""
        for t in range(self.length):
            yield self.frame(t)[0]

    def frame(self, t):
        """RGB uint8 (H, W, 3) and label map uint8 (H, W) of frame ``t``."""
        if not 0 <= t < self.length:
            raise IndexError(f"frame {t} outside 0..{self.length - 1}")
        rgb = self._background.render(self._xs, self._ys, t)
        labels = np.zeros((self.height, self.width), np.uint8)
        for obj in self._objects:  # back to front: later objects occlude earlier ones
            if t < obj.first_frame:
                continue
            box, inside, texture = obj.render(self._xs, self._ys, t)
            if box is None:
                continue
            rgb[box][inside] = texture[inside]
            labels[box][inside] = obj.label
        if self.noise:
            grain = np.random.default_rng([self.seed, 1, t]).integers(
                -self.noise, self.noise + 1, size=rgb.shape, dtype=np.int16)
            rgb = rgb + grain
        return np.clip(rgb, 0, 255).astype(np.uint8), labels

    @property
    def categories(self):
        """{label: shape name}: the object's category (e.g. for YouTubeVOS meta files)."""
        return {obj.label: obj.shape for obj in sorted(self._objects, key=lambda o: o.label)}

    def labels(self, t):
        """Label map of frame ``t`` (same as ``frame(t)[1]``)."""
        return self.frame(t)[1]

    def amodal_mask(self, label, t):
        """Boolean HxW mask of object ``label`` at frame ``t`` including its occluded parts
        (empty before the object's first frame or when it is outside the frame)."""
        for obj in self._objects:
            if obj.label == label:
                if t < obj.first_frame:
                    return np.zeros((self.height, self.width), bool)
                return obj.mask(self._xs, self._ys, t)
        raise KeyError(f"no object with label {label}; labels are {self.object_ids}")

    # ------------------------------------------------------------------ placement
    def _place_objects(self, rng):
        for _ in range(MAX_PLACEMENT_TRIES):
            objects = [
                _random_object(rng, label, start, self.height, self.width, self._shapes,
                               crosses_edge=index >= len(self.object_ids) - self._edge_crossers,
                               deform=_random_deformation(self.seed, label, self._deform))
                for index, (label, start) in enumerate(self.first_frames.items())
            ]
            order = rng.permutation(len(objects))
            objects = [objects[i] for i in order]
            if self._all_visible_at_entry(objects):
                return objects
        raise ValueError(
            f"could not place {len(self.object_ids)} objects in a {self.height}x{self.width} frame so that "
            f"each is visible at its first frame; use fewer objects or larger frames")

    def _all_visible_at_entry(self, objects):
        """Each object, minus the objects drawn in front of it, covers enough pixels at its first frame."""
        for depth, obj in enumerate(objects):
            t = obj.first_frame
            visible = obj.mask(self._xs, self._ys, t)
            for front in objects[depth + 1:]:
                if t >= front.first_frame:
                    visible &= ~front.mask(self._xs, self._ys, t)
            if visible.sum() < self._min_visible:
                return False
        return True


# ---------------------------------------------------------------------- motion
def _bounce(s, low, high):
    """Closed-form position of a point moving at unit speed along s, reflecting off low and high."""
    span = max(high - low, 1e-6)
    m = np.mod(s - low, 2 * span)
    return low + (m if m <= span else 2 * span - m)


def _wrap(s, low, high):
    """Closed-form position on a circular track [low, high): leaving at high re-enters at low."""
    return low + np.mod(s - low, high - low)


class _Object:
    def __init__(self, label, first_frame, shape, radius, aspect, centre_at_entry, velocity,
                 crosses_edge, angle0, spin, breathe, colours, stripes, frame_size, deform=None):
        self.label, self.first_frame, self.shape = label, first_frame, shape
        self.radius, self.aspect = radius, aspect
        self.velocity, self.crosses_edge = velocity, crosses_edge
        self.angle0, self.spin, self.breathe = angle0, spin, breathe
        self.colours, self.stripes = colours, stripes
        self.deform = deform    # None or (amplitude, lobes, angular speed, phase) of the outline's wobble
        self.height, self.width = frame_size
        # Track parameters: the motion is s(t) = s0 + v t mapped through bounce / wrap, with s0
        # chosen so the centre sits at centre_at_entry at the first frame.
        self.s0 = np.asarray(centre_at_entry, float) - self.velocity * first_frame

    def centre(self, t):
        sx, sy = self.s0 + self.velocity * t
        r = self.radius
        if self.crosses_edge:
            gap = 0.25 * self.width
            x = _wrap(sx, -r - gap, self.width + r)
        else:
            x = _bounce(sx, 0.6 * r, self.width - 0.6 * r)
        y = _bounce(sy, 0.6 * r, self.height - 0.6 * r)
        return x, y

    def mask(self, xs, ys, t):
        """Full-frame boolean mask of the object at frame t (ignoring occlusion)."""
        out = np.zeros(xs.shape, bool)
        box, inside, _ = self.render(xs, ys, t, texture=False)
        if box is not None:
            out[box] = inside
        return out

    def render(self, xs, ys, t, texture=True):
        """(box, inside, texture) on the crop ``box`` of the frame that can hold the object.

        ``box`` is a pair of slices (None when the object is entirely outside the frame); ``inside`` is
        the boolean shape mask on that crop and ``texture`` its float32 RGB texture (None if not asked).
        """
        cx, cy = self.centre(t)
        scale = 1.0 + 0.12 * math.sin(self.breathe[0] * t + self.breathe[1])
        wobble = 1.0 + (self.deform[0] if self.deform else 0.0)
        reach = 1.25 * self.radius * scale * max(1.0, self.aspect) * wobble  # bounds every shape's extent
        y0, y1 = max(0, math.floor(cy - reach)), min(self.height, math.ceil(cy + reach) + 1)
        x0, x1 = max(0, math.floor(cx - reach)), min(self.width, math.ceil(cx + reach) + 1)
        if y0 >= y1 or x0 >= x1:
            return None, None, None
        box = (slice(y0, y1), slice(x0, x1))
        angle = self.angle0 + self.spin * t
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = xs[box] - cx, ys[box] - cy
        u = (c * dx + s * dy) / (self.radius * scale)
        v = (-s * dx + c * dy) / (self.radius * scale * self.aspect)
        if self.deform:   # non-rigid: the outline's radius varies with the polar angle and in time
            amplitude, lobes, speed, phase = self.deform
            radial = 1.0 + amplitude * np.sin(lobes * np.arctan2(v, u) + speed * t + phase)
            u, v = u / radial, v / radial
        if self.shape == "ellipse":
            inside = u * u + v * v <= 1.0
        elif self.shape == "rectangle":
            inside = (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
        else:  # triangle: apex up in local coordinates
            inside = (v <= 0.7) & (v >= 2.0 * u - 1.0) & (v >= -2.0 * u - 1.0)
        if not texture:
            return box, inside, None
        fu, fv, phase = self.stripes
        mix = 0.5 + 0.5 * np.sin(fu * u + fv * v + phase)
        tex = self.colours[0] + (self.colours[1] - self.colours[0]) * mix[..., None]
        return box, inside, tex.astype(np.float32)


def _random_deformation(seed, label, amplitude):
    """The wobble of one object's outline (its own generator, so rigid videos stay as they were)."""
    if not amplitude:
        return None
    rng = np.random.default_rng([seed, 0xDEF0, label])
    return (amplitude * float(rng.uniform(0.5, 1.0)), int(rng.integers(2, 5)), float(rng.uniform(0.05, 0.2)),
            float(rng.uniform(0, 2 * math.pi)))


def _random_object(rng, label, first_frame, height, width, shapes, crosses_edge, deform=None):
    short = min(height, width)
    radius = float(rng.uniform(0.12, 0.22) * short)
    speed = float(rng.uniform(0.01, 0.035) * short) + 0.5
    heading = rng.uniform(0, 2 * math.pi)
    velocity = np.array([math.cos(heading), math.sin(heading)]) * speed
    if crosses_edge:  # make sure it really travels across the frame horizontally
        velocity[0] = math.copysign(max(abs(velocity[0]), 0.7 * speed), velocity[0])
    centre = (rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height)
    colours = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    colours[1] = 255 - colours[0] * rng.uniform(0.3, 0.8)  # keep the two stripe colours apart
    return _Object(
        label=label, first_frame=first_frame, shape=shapes[rng.integers(len(shapes))],
        radius=radius, aspect=float(rng.uniform(0.6, 1.4)), centre_at_entry=centre,
        velocity=velocity, crosses_edge=crosses_edge, angle0=float(rng.uniform(0, 2 * math.pi)),
        spin=float(rng.uniform(-0.06, 0.06)),
        breathe=(float(rng.uniform(0.05, 0.2)), float(rng.uniform(0, 2 * math.pi))),
        colours=colours,
        stripes=(float(rng.uniform(2, 7)), float(rng.uniform(-4, 4)), float(rng.uniform(0, 2 * math.pi))),
        frame_size=(height, width), deform=deform)


# ---------------------------------------------------------------------- background
class _Background:
    def __init__(self, waves, base, pan):
        self.waves, self.base, self.pan = waves, base, pan

    def render(self, xs, ys, t):
        x = xs + self.pan[0] * t
        y = ys + self.pan[1] * t
        out = np.broadcast_to(self.base, xs.shape + (3,)).astype(np.float32)
        for fx, fy, phase, colour in self.waves:
            out = out + np.sin(fx * x + fy * y + phase)[..., None] * colour
        return out


def _random_background(rng, height, width):
    short = min(height, width)
    waves = []
    for _ in range(3):
        frequency = rng.uniform(2, 10) * 2 * math.pi / short
        direction = rng.uniform(0, 2 * math.pi)
        waves.append((frequency * math.cos(direction), frequency * math.sin(direction),
                      rng.uniform(0, 2 * math.pi), rng.uniform(-30, 30, size=3).astype(np.float32)))
    base = rng.uniform(60, 190, size=3).astype(np.float32)
    pan = rng.uniform(-0.5, 0.5, size=2)
    return _Background(waves, base, pan)


# ---------------------------------------------------------------------- benchmark layouts on disk
DAVIS_RESOLUTION = "480p"
YOUTUBE_ANNOTATION_STEP = 5  # YouTubeVOS annotates (and ships in JPEGImages) every 5th frame


def _write_jpeg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"{path}: could not write the frame")


def _fresh_root(root, overwrite):
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} exists and is not empty; pass overwrite=True (--overwrite)")
        shutil.rmtree(root)
    return root


def write_synthetic_davis(root, seed=0, num_train=2, num_val=2, num_test_dev=1, length=8, height=480,
                          width=854, max_objects=3, overwrite=False, edge_crossers=None, deform=0.0):
    """Write a DAVIS-2017-layout set of synthetic videos under ``root``; returns {split: [names]}.

    trainval/JPEGImages/480p/<video>/00000.jpg, trainval/Annotations/480p/<video>/00000.png (indexed,
    DAVIS palette, every frame), trainval/ImageSets/2016|2017/train.txt|val.txt, and test-dev/ with
    the first annotation only and ImageSets/2017/test-dev.txt. Every object is in frame 0.
    ``edge_crossers`` and ``deform``: as in ``SyntheticVideo`` (for every video).
    """
    root = _fresh_root(root, overwrite)
    rng = np.random.default_rng([seed, 2017])
    splits = {"train": num_train, "val": num_val, "test-dev": num_test_dev}
    names = {}
    for split_index, (split, count) in enumerate(splits.items()):
        folder = root / ("test-dev" if split == "test-dev" else "trainval")
        names[split] = [f"{split.replace('-', '')}-shapes-{i:02d}" for i in range(count)]
        for video_index, name in enumerate(names[split]):
            k = int(rng.integers(1, max_objects + 1))
            video = SyntheticVideo(seed=_video_seed(seed, split_index, video_index),
                                   height=height, width=width, num_objects=k, length=length,
                                   edge_crossers=None if edge_crossers is None else min(edge_crossers, k),
                                   deform=deform)
            for t, (rgb, labels) in enumerate(video):
                _write_jpeg(folder / "JPEGImages" / DAVIS_RESOLUTION / name / f"{t:05d}.jpg", rgb)
                if split != "test-dev" or t == 0:
                    write_label_png(folder / "Annotations" / DAVIS_RESOLUTION / name / f"{t:05d}.png", labels)
    for split, years in (("train", (2016, 2017)), ("val", (2016, 2017)), ("test-dev", (2017,))):
        folder = root / ("test-dev" if split == "test-dev" else "trainval")
        for year in years:
            image_set = folder / "ImageSets" / str(year) / f"{split}.txt"
            image_set.parent.mkdir(parents=True, exist_ok=True)
            image_set.write_text("".join(f"{n}\n" for n in names[split]))
    return names


def _video_seed(seed, split_index, video_index):
    return int(seed) * 1_000_003 + split_index * 10_007 + video_index


def write_synthetic_youtube(root, seed=0, num_train=2, num_valid=2, length=16, height=480, width=854,
                            max_objects=3, overwrite=False, edge_crossers=None, deform=0.0):
    """Write a YouTubeVOS-layout set under ``root``; returns {split: [names]}.

    train/: JPEGImages and full Annotations at every 5th frame, meta.json (objects' categories and
    frames). valid/: JPEGImages at every 5th frame, Annotations only where objects are first given
    (each PNG holds only those objects), meta.json; all_frames/valid_all_frames/JPEGImages: every
    frame. valid_gt/Annotations: the full ground truth at every 5th frame (not part of the real
    benchmark; it lets ``scripts/evaluate.py --benchmark youtube`` score a synthetic run).
    Train objects are ellipses and rectangles only, so valid triangles are "unseen" categories. Valid
    objects have non-consecutive ids, and the second object onwards may enter at a later 5th frame
    (the first valid video always has one that does, given max_objects >= 2 and length > 5).
    ``edge_crossers`` and ``deform``: as in ``SyntheticVideo`` (for every video).
    """
    root = _fresh_root(root, overwrite)
    rng = np.random.default_rng([seed, 2018])
    sparse = list(range(0, length, YOUTUBE_ANNOTATION_STEP))
    names = {}
    for split_index, (split, count) in enumerate((("train", num_train), ("valid", num_valid))):
        meta = {}
        names[split] = [f"{split}{i:03d}shapes" for i in range(count)]
        for video_index, name in enumerate(names[split]):
            # the first valid video always has a late object (when the video is long enough)
            late_one = split == "valid" and video_index == 0 and max_objects >= 2 and len(sparse) > 1
            k = int(rng.integers(2 if late_one else 1, max_objects + 1))
            if split == "train":
                ids, starts, shapes = list(range(1, k + 1)), [0] * k, SHAPES[:2]
            else:
                ids = [1 + 3 * i + int(rng.integers(0, 2)) for i in range(k)]  # never consecutive
                starts = [0] + [int(rng.choice(sparse)) for _ in range(k - 1)]
                if late_one:
                    starts[-1] = sparse[1]
                shapes = SHAPES
            video = SyntheticVideo(seed=_video_seed(seed, split_index, video_index), height=height, width=width,
                                   num_objects=k, length=length, object_ids=ids, first_frames=starts,
                                   shapes=shapes, deform=deform,
                                   edge_crossers=None if edge_crossers is None else min(edge_crossers, k))
            present = {i: [] for i in ids}
            for t, (rgb, labels) in enumerate(video):
                frame = f"{t:05d}"
                if split == "valid":
                    _write_jpeg(root / "all_frames" / "valid_all_frames" / "JPEGImages" / name / f"{frame}.jpg", rgb)
                if t not in sparse:
                    continue
                _write_jpeg(root / split / "JPEGImages" / name / f"{frame}.jpg", rgb)
                if split == "train":
                    write_label_png(root / split / "Annotations" / name / f"{frame}.png", labels)
                    for i in ids:
                        if (labels == i).any():
                            present[i].append(frame)
                    continue
                write_label_png(root / "valid_gt" / "Annotations" / name / f"{frame}.png", labels)
                new = [i for i, start in zip(ids, starts) if start == t]
                if new:
                    given = np.where(np.isin(labels, new), labels, 0).astype(np.uint8)
                    write_label_png(root / split / "Annotations" / name / f"{frame}.png", given)
                for i, start in zip(ids, starts):
                    if t >= start:
                        present[i].append(frame)
            meta[name] = {"objects": {str(i): {"category": video.categories[i], "frames": present[i]}
                                      for i in ids}}
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / "meta.json").write_text(json.dumps({"videos": meta}, indent=1))
    return names
