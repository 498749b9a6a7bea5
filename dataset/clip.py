"""What every training dataset returns: a clip of T frames as tensors."""
import numpy as np
import torch

from model.normalization import normalize_image

__all__ = ["make_clip", "target_labels"]


def target_labels(label_map, object_ids):
    """Map the chosen object ids to 1, 2, ... (in the given order); everything else to 0."""
    out = np.zeros(label_map.shape, np.int64)
    for slot, object_id in enumerate(object_ids, start=1):
        out[label_map == object_id] = slot
    return out


def with_extras(sample, rng, sample_extras):
    """``sample`` plus the tensors ``sample_extras(sample, rng)`` adds (a model family's per-sample
    data, e.g. RDE's perturbed first masks), drawn after everything else from the sample's RNG."""
    if sample_extras is not None:
        sample.update(sample_extras(sample, rng))
    return sample


def make_clip(images, labels, num_objects, max_objects, name, frame_indices):
    """Tensors of one sample.

    rgb: T x 3 x H x W ImageNet-normalised float32; labels: T x H x W int64 (0 background, 1..K);
    selector: ``max_objects`` floats, 1 for the real object slots; name; frame_indices: T int64.
    """
    rgb = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
    selector = torch.zeros(max_objects)
    selector[:max(1, num_objects)] = 1.0
    return {
        "rgb": normalize_image(rgb),
        "labels": torch.from_numpy(np.stack(labels)),
        "selector": selector,
        "name": name,
        "frame_indices": torch.as_tensor(frame_indices, dtype=torch.int64),
    }
