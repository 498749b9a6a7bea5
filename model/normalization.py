"""ImageNet normalisation, the input convention of every network here (torchvision's ResNet statistics).

Clips and frames travel as RGB in [0, 1]; ``normalize_image`` maps them to the encoders' input.
"""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _statistics(image):
    """The mean and std as (3, 1, 1) tensors of ``image``'s dtype and device."""
    return image.new_tensor(IMAGENET_MEAN).view(3, 1, 1), image.new_tensor(IMAGENET_STD).view(3, 1, 1)


def normalize_image(image):
    """RGB in [0, 1], (..., 3, H, W) -> ImageNet-normalised."""
    mean, std = _statistics(image)
    return (image - mean) / std


def denormalize_image(image):
    """ImageNet-normalised (..., 3, H, W) -> RGB in [0, 1]."""
    mean, std = _statistics(image)
    return image * std + mean
