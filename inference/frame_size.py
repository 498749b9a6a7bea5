"""Frame-size rules: the size (height, width) at which the network sees a video's frames.

Two sizes are chosen in two places, and both rules live here:

- by the evaluator, before frames reach the memory policy: ``short_side_size`` (YouTubeVOS at 480p,
  the STCN protocol) and ``max_side_size`` (``eval_generic.py --max_side``). Which one a benchmark
  gets is the policy's choice, ``MemoryPolicy.evaluator_short_side`` (``evaluator_short_side`` here);
- by SWEM itself, which resizes every frame to its working size (``swem_work_size``: 480 x 864 on
  DAVIS, ``swem_youtube_work_size`` on YouTubeVOS) and so takes full-size frames from the evaluator.

Sizes are (height, width) in pixels; 0 or None as a short or long side means "keep the size".

SWEM's sizes are those of its published evaluator: every DAVIS frame goes to 480 x 864 (bicubic,
whatever its aspect: 480 x 854 is stretched; no padding); YouTubeVOS frames follow
``swem_youtube_work_size`` (bilinear). Further reading: SWEM.md §3.1-3.2 (project reference notes,
not part of this repository).
"""
KEEP_SIZE = 0                    # a short/long side of 0: frames keep their own size
YOUTUBE_SHORT_SIDE = 480         # YouTubeVOS frames are processed at 480p, shorter side (STCN and SWEM)
SWEM_DAVIS_WORK_SIZE = (480, 864)    # the published SWEM evaluator resizes every DAVIS frame to 480 x 864
SWEM_YOUTUBE_RULE = "youtube"    # work_size value naming the published SWEM YouTubeVOS rule (swem_youtube_work_size)
SWEM_STRIDE = 16                 # SWEM's working sides are multiples of the network's stride, 16

# shorter side the evaluator resizes frames to before a policy that keeps their size sees them
EVALUATOR_SHORT_SIDES = {"youtube": YOUTUBE_SHORT_SIDE, "davis": KEEP_SIZE}


def short_side_size(height, width, short_side):
    """(h, w) with the shorter side = short_side and the longer scaled (truncated, like torchvision);
    ``short_side`` 0/None keeps the size."""
    if not short_side or min(height, width) == short_side:
        return height, width
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def max_side_size(height, width, max_side):
    """(h, w) scaled down so the longer side is at most ``max_side`` (rounded, at least 1 pixel);
    smaller frames and ``max_side`` 0/None keep their size."""
    if not max_side or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def round_to_stride(x):
    """Nearest multiple of 16 (SWEM_STRIDE), remainders of 8 and more rounding up (the published rule)."""
    return (int(x) + SWEM_STRIDE // 2) // SWEM_STRIDE * SWEM_STRIDE


def swem_youtube_work_size(height, width):
    """SWEM's YouTubeVOS working size: shorter side 480 (if it is at least 480) with the longer side
    scaled and truncated, then both rounded to multiples of 16; smaller frames keep their size,
    rounded to multiples of 16. E.g. 720 x 1280 -> 480 x 848, 360 x 640 -> 368 x 640."""
    if min(height, width) >= YOUTUBE_SHORT_SIDE:
        height, width = short_side_size(height, width, YOUTUBE_SHORT_SIDE)
    return round_to_stride(height), round_to_stride(width)


def swem_work_size(work_size, height, width):
    """The (h, w) SWEM processes an H x W video at, for its ``work_size`` option: (h, w) itself (e.g.
    SWEM_DAVIS_WORK_SIZE), SWEM_YOUTUBE_RULE (``swem_youtube_work_size``), or None (the frame's own
    size, which must be a multiple of 16 on both sides; ValueError otherwise)."""
    if work_size == SWEM_YOUTUBE_RULE:
        return swem_youtube_work_size(height, width)
    if work_size is None:
        if height % SWEM_STRIDE or width % SWEM_STRIDE:
            raise ValueError(f"work_size=None needs frames whose sides are multiples of {SWEM_STRIDE}, "
                             f"got {height}x{width}")
        return height, width
    return tuple(work_size)


def evaluator_short_side(benchmark, resizes_frames_itself):
    """Shorter side (pixels; KEEP_SIZE = full size) the evaluator resizes ``benchmark``'s frames to:
    full size for a policy that resizes frames itself, else ``EVALUATOR_SHORT_SIDES`` (YouTubeVOS:
    480; DAVIS and other benchmarks: full size)."""
    if resizes_frames_itself:
        return KEEP_SIZE
    return EVALUATOR_SHORT_SIDES.get(benchmark, KEEP_SIZE)
