"""Notebook/script entry point: ``segment_video`` streams per-frame probabilities of a video."""
import numpy as np
import torch

from inference.core import InferenceCore
from inference.labels import ObjectChannels, given_masks_by_frame


def object_ids(masks):
    """Sorted label ids of every object in ``masks`` (a label map or {frame: label map}); the
    objects of channels 1..K of ``segment_video`` (``ObjectChannels.from_masks(masks).ids``)."""
    return list(ObjectChannels.from_masks(masks).ids)


def _with_last_flag(frames):
    """(t, frame, is_last) with one frame of look-ahead, so the video's end is known in time."""
    iterator = iter(frames)
    try:
        current = next(iterator)
    except StopIteration:
        return
    t = 0
    for upcoming in iterator:
        yield t, current, False
        current, t = upcoming, t + 1
    yield t, current, True


def segment_video(network, frames, masks, memory="every5", required_frames=None, device=None,
                  amp=False, precision="float32", **options):
    """Segment a video; yields one float32 (K+1) x H x W probability array per frame.

    frames: any iterable of H x W x 3 uint8 RGB arrays (read lazily, one at a time).
    masks: the H x W integer label map of frame 0 (DAVIS protocol), or {frame index: label map}
        holding each object in the frame where it is first given (YouTubeVOS protocol).
    memory: the memory policy (``inference.MEMORY_POLICIES``); options go to it (every5: top_k=20,
        mem_every=5, include_last=False, max_frames=None).
    required_frames: optional set of frame indices whose output is needed; other frames are skipped
        when the memory does not need them either, and yield None.
    amp: CUDA float16 autocast (the published ``--amp``).
    precision: "float32" (default) or "bfloat16" (CPU only, opt-in): the network and memory work run
        under ``torch.autocast("cpu", torch.bfloat16)``; the yielded probabilities stay float32
        (``inference.precision``).
    channels_last (default True): run the network on channels-last tensors (faster oneDNN/cuDNN
        convolutions; the outputs equal the NCHW run's up to float rounding).
    Channels: background, then every object of the video in increasing label order; an object not
    yet given has probability 0, and frames before the first given frame are all background
    (``inference.labels.ObjectChannels``).
    """
    given = given_masks_by_frame(masks)
    channels = ObjectChannels.from_masks(given)
    core = InferenceCore(network, memory=memory, device=device, amp=amp, precision=precision, **options)
    seen = -1
    for t, frame, is_last in _with_last_flag(frames):
        seen = t
        need = required_frames is None or t in required_frames
        with torch.inference_mode():
            probs = core.step(t, frame, mask=given.get(t), is_last=is_last, need_output=need)
            if probs is not None:
                probs = probs.cpu().numpy()
        if probs is None and core.object_ids:
            yield None
            continue
        height, width = np.asarray(frame).shape[:2]
        yield channels.scatter(probs, core.object_ids, height, width)
    late = sorted(t for t in given if t > seen)
    if late:
        raise ValueError(f"masks were given for frame(s) {late}, but the video has only {seen + 1} frames")
