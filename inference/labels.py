"""User label ids <-> probability channels of a video, in one place.

A video's probabilities have K + 1 channels: channel 0 is the background and channel c (1..K) the
object with the c-th smallest label id among every object given for the video (in any frame).
``segment_video`` returns probabilities in that order, the eval scripts turn them into label maps
and score files with it, and the resizing check compares the objects of two sets of masks.

    channels = ObjectChannels.from_masks({0: first, 40: late})   # label maps holding ids 3 and 7
    channels.ids                     # (3, 7)
    channels.channel_of(7)           # 2
    channels.to_labels(probs)        # H x W uint8 label map holding 0, 3 and 7
"""
import operator

import numpy as np

BACKGROUND = 0          # label id and channel of the background
MAX_LABEL_ID = 255      # label maps are written as 8-bit PNGs (ids 1..255 with the background 0)


def given_masks_by_frame(masks):
    """``masks`` (an H x W label map of frame 0, or {frame index: label map}) as {frame: ndarray}."""
    if isinstance(masks, dict):
        given = {}
        for t, m in masks.items():
            if not isinstance(t, (int, np.integer)) or t < 0:
                raise ValueError(f"mask dict keys must be frame indices >= 0, got {t!r}")
            given[int(t)] = np.asarray(m)
        return given
    return {0: np.asarray(masks)}


class ObjectChannels:
    """The channel order of one video: background, then its objects' label ids in increasing order.

    ids: the objects' label ids (any order, repeats ignored; integers other than 0). ``ids`` is then
    the sorted tuple, ``num_channels`` = len(ids) + 1.
    """

    def __init__(self, ids):
        ids = sorted({operator.index(i) for i in ids})
        if BACKGROUND in ids:
            raise ValueError(f"label id {BACKGROUND} is the background, not an object (ids {ids})")
        self.ids = tuple(ids)
        self._channel = {obj: c for c, obj in enumerate(self.ids, start=1)}

    @classmethod
    def from_masks(cls, masks):
        """The objects of ``masks``: an H x W integer label map, or {frame index: label map}
        (YouTubeVOS: each object in the frame where it is first given). 0 is the background."""
        ids = set()
        for t, m in given_masks_by_frame(masks).items():
            if m.ndim != 2 or not np.issubdtype(m.dtype, np.integer):
                raise ValueError(f"the mask of frame {t} must be an H x W integer label map, got "
                                 f"{m.shape} {m.dtype}")
            ids.update(int(i) for i in np.unique(m) if i != BACKGROUND)
        return cls(ids)

    @property
    def num_channels(self):
        return len(self.ids) + 1

    def channel_of(self, obj):
        """The channel (1..K) of label id ``obj``."""
        try:
            return self._channel[obj]
        except KeyError:
            raise ValueError(f"label id {obj} is not an object of this video (ids {list(self.ids)})") from None

    def lost_ids(self, other):
        """Sorted label ids of this video's objects that ``other`` (ObjectChannels) lacks."""
        return sorted(set(self.ids) - set(other.ids))

    def scatter(self, probs, ordered_ids, height, width):
        """(K+1) x H x W float32 probabilities in this video's channel order.

        probs: (1 + K') x H x W, the background then the objects ``ordered_ids`` (label ids, e.g. in
        the order they were given, as ``InferenceCore.object_ids``), or None when no object has been
        given yet (every pixel background). Channels of objects not in ``ordered_ids`` stay 0.
        """
        out = np.zeros((self.num_channels, height, width), dtype=np.float32)
        if probs is None:
            if ordered_ids:
                raise ValueError(f"no probabilities given for objects {list(ordered_ids)}")
            out[BACKGROUND] = 1.0
            return out
        if len(probs) != len(ordered_ids) + 1:
            raise ValueError(f"{len(probs)} probability channels for the background and {len(ordered_ids)} "
                             f"objects")
        out[[BACKGROUND] + [self.channel_of(obj) for obj in ordered_ids]] = probs
        return out

    def to_labels(self, probs):
        """H x W uint8 label map: the argmax channel of (K+1) x H x W ``probs`` as its label id."""
        if len(probs) != self.num_channels:
            raise ValueError(f"{len(probs)} probability channels, but the video has {self.num_channels} "
                             f"(background and objects {list(self.ids)})")
        outside = [obj for obj in self.ids if not 0 < obj <= MAX_LABEL_ID]
        if outside:
            raise ValueError(f"label ids {outside} do not fit an 8-bit label map (1..{MAX_LABEL_ID})")
        lookup = np.array((BACKGROUND, *self.ids), dtype=np.uint8)
        return lookup[np.argmax(probs, axis=0)]

    def __eq__(self, other):
        return isinstance(other, ObjectChannels) and self.ids == other.ids

    def __hash__(self):
        return hash(self.ids)

    def __repr__(self):
        return f"ObjectChannels(ids={list(self.ids)})"
