"""Training datasets (static images, BL30K, DAVIS + YouTubeVOS), their augmentation and sampling,
synthetic videos, and the benchmark readers used by evaluation.

Import the submodules directly, e.g. ``from dataset.vos_dataset import VOSTrainDataset``.
"""
