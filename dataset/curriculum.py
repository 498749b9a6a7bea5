"""Maximum temporal skip between the frames of a training clip, as a curriculum over training.

STCN (appendix F.4, following MiVOS): the maximum skip is 5, then 10, 15, 20, 25 and back to 5,
switching at 10 %, 20 %, 30 %, 40 % and 90 % of the stage's iterations for main training
(80 % instead of 90 % for BL30K, which is harder). Datasets whose stored frames are already
several raw frames apart (YouTubeVOS train: every 5th frame) divide the skip by that factor.
"""
from dataclasses import dataclass

__all__ = ["SkipCurriculum", "MAIN_CURRICULUM", "BL30K_CURRICULUM"]


@dataclass(frozen=True)
class SkipCurriculum:
    """``initial`` until the first switch; ``values[i]`` from ``fractions[i]`` of training on."""

    initial: int = 5
    values: tuple = (10, 15, 20, 25, 5)
    fractions: tuple = (0.1, 0.2, 0.3, 0.4, 0.9)

    def __post_init__(self):
        if len(self.values) != len(self.fractions):
            raise ValueError("a skip curriculum needs one switch fraction per value")
        if list(self.fractions) != sorted(self.fractions):
            raise ValueError(f"switch fractions must increase, got {self.fractions}")

    def switch_iterations(self, total_iterations):
        """Iterations at which the maximum skip changes."""
        return [int(f * total_iterations) for f in self.fractions]

    def max_skip(self, iteration, total_iterations):
        """Maximum skip (in stored frames, before any dataset-specific division) at ``iteration``."""
        skip = self.initial
        for value, start in zip(self.values, self.switch_iterations(total_iterations)):
            if iteration >= start:
                skip = value
        return skip


MAIN_CURRICULUM = SkipCurriculum()
BL30K_CURRICULUM = SkipCurriculum(fractions=(0.1, 0.2, 0.3, 0.4, 0.8))
