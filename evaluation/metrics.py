"""Region similarity J and boundary accuracy F exactly as the DAVIS 2017 toolkit defines them.

Definitions (the official DAVIS 2017 toolkit's, semi-supervised task, which produced the published tables):
* J = |G ∩ P| / |G ∪ P|, and 1 when the union is empty.
* Boundary map of a binary mask: a pixel whose value differs from its east, south or south-east
  neighbour; neighbours outside the image are not compared, so the image border is never a boundary.
* F: both boundary maps are dilated by a disk of radius r = ceil(0.008 · image diagonal);
  precision = |Bp ∩ dilate(Bg)| / |Bp|, recall = |Bg ∩ dilate(Bp)| / |Bg|, F = 2PR / (P + R)
  (0 when P + R = 0); both maps empty gives 1, exactly one empty gives 0.
* Per object over its n evaluated frames: Mean, Recall = fraction of frames with value > 0.5, and
  Decay = mean(first quarter bin) − mean(last quarter bin) with the toolkit's overlapping bins.

Scores of all objects of a frame are computed from its two label maps: each object's boundary work
is done on the bounding box of its two masks only, which gives the same numbers as full-frame maps
(proved in tests/test_metrics.py).

Further reading: METRICS.md (project reference notes, not part of this repository).
"""
import math

import cv2
import numpy as np

BOUNDARY_TOLERANCE = 0.008  # DAVIS: dilation radius as a fraction of the image diagonal
RECALL_THRESHOLD = 0.5      # DAVIS: a frame counts for Recall when its score is > 0.5
DECAY_BINS = 4              # DAVIS: Decay compares the first and the last of 4 temporal bins
VOID_LABEL = 255            # DAVIS: void pixels; the semi-supervised toolkit scores them as background


def jaccard(gt, pred):
    """J of two boolean masks (1 when both are empty)."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    union = np.count_nonzero(gt | pred)
    return 1.0 if union == 0 else np.count_nonzero(gt & pred) / union


def boundary_tolerance(height, width):
    """Disk radius in pixels for an image of this size (8 at 480x854)."""
    return int(math.ceil(BOUNDARY_TOLERANCE * math.hypot(height, width)))


def boundary_map(mask):
    """Boolean boundary map of a binary mask (east / south / south-east neighbour differs)."""
    mask = np.asarray(mask, bool)
    boundary = np.zeros_like(mask)
    boundary[:, :-1] |= mask[:, :-1] != mask[:, 1:]      # east
    boundary[:-1, :] |= mask[:-1, :] != mask[1:, :]      # south
    boundary[:-1, :-1] |= mask[:-1, :-1] != mask[1:, 1:]  # south-east
    return boundary


def disk(radius):
    """uint8 structuring element holding every offset with dy² + dx² <= radius²."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).astype(np.uint8)


def f_measure(gt, pred, radius=None):
    """Boundary F of two boolean masks; ``radius`` defaults to the tolerance at the mask's size."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if radius is None:
        radius = boundary_tolerance(*gt.shape)
    return _f_from_boundaries(boundary_map(gt), boundary_map(pred), disk(radius))


def _f_from_boundaries(gt_boundary, pred_boundary, kernel):
    n_gt = np.count_nonzero(gt_boundary)
    n_pred = np.count_nonzero(pred_boundary)
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    gt_dilated = cv2.dilate(gt_boundary.view(np.uint8), kernel).view(bool)
    pred_dilated = cv2.dilate(pred_boundary.view(np.uint8), kernel).view(bool)
    precision = np.count_nonzero(pred_boundary & gt_dilated) / float(n_pred)
    recall = np.count_nonzero(gt_boundary & pred_dilated) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


class FrameScorer:
    """Scores J and F of objects 1..K (or of the given ``labels``) on label maps of one fixed size."""

    def __init__(self, num_objects, height, width, labels=None):
        self.labels = list(range(1, int(num_objects) + 1)) if labels is None else [int(i) for i in labels]
        self.shape = (int(height), int(width))
        self.kernel = disk(boundary_tolerance(height, width))

    def __call__(self, gt_labels, pred_labels):
        """(J, F): float64 arrays, one entry per object, for two HxW label maps (0 = background).

        ``self.absent`` then tells, per object, whether neither map held it (scored J = F = 1)."""
        j_scores, f_scores = np.ones(len(self.labels)), np.ones(len(self.labels))
        self.absent = np.zeros(len(self.labels), bool)
        height, width = self.shape
        for index, label in enumerate(self.labels):
            gt_box, pred_box = _bounding_box(gt_labels, label), _bounding_box(pred_labels, label)
            if gt_box is None and pred_box is None:
                self.absent[index] = True
                continue  # both empty: J = F = 1
            box = _union_box(gt_box, pred_box, margin=1, height=height, width=width)
            gt_mask = gt_labels[box] == label
            pred_mask = pred_labels[box] == label
            union = np.count_nonzero(gt_mask | pred_mask)
            j_scores[index] = np.count_nonzero(gt_mask & pred_mask) / union
            # The box keeps a one-pixel margin (clipped at the image border), so its boundary maps
            # equal the full-frame ones there and every boundary pixel lies inside it.
            f_scores[index] = _f_from_boundaries(boundary_map(gt_mask), boundary_map(pred_mask),
                                                 self.kernel)
        return j_scores, f_scores


def _bounding_box(labels, label):
    """(rows, cols) slices of the pixels equal to ``label``, or None when there are none."""
    x, y, w, h = cv2.boundingRect((labels == label).view(np.uint8))
    return None if w == 0 else (slice(y, y + h), slice(x, x + w))


def _union_box(a, b, margin, height, width):
    boxes = [box for box in (a, b) if box is not None]
    top = max(0, min(box[0].start for box in boxes) - margin)
    bottom = min(height, max(box[0].stop for box in boxes) + margin)
    left = max(0, min(box[1].start for box in boxes) - margin)
    right = min(width, max(box[1].stop for box in boxes) + margin)
    return slice(top, bottom), slice(left, right)


def decay_bin_edges(num_frames):
    """The toolkit's 5 bin edges (frame indices): round(linspace(1, n, 5) + 1e-10) - 1, as int64."""
    return (np.round(np.linspace(1, num_frames, DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)


def object_statistics(values):
    """(Mean, Recall, Decay) of one object's per-frame scores, as the DAVIS 2017 toolkit computes them.

    Bin i holds frames edges[i] .. edges[i+1] inclusive, so neighbouring bins share an end frame.
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("object statistics need a non-empty 1-D sequence of per-frame scores")
    mean = float(np.mean(values))
    recall = float(np.mean(values > RECALL_THRESHOLD))
    edges = decay_bin_edges(values.size)
    bins = [values[edges[i]:edges[i + 1] + 1] for i in range(DECAY_BINS)]
    decay = float(np.mean(bins[0]) - np.mean(bins[-1]))
    return mean, recall, decay
