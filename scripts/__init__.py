"""Command-line tools beside the entry points: downloads, synthetic data, checkpoints, evaluation of
result folders, overlays, benchmarks, and the learning and GPU checks. Each runs as
``python scripts/NAME.py`` or ``python -m scripts.NAME`` (after ``pip install -e .``)."""
