"""RDE-VOS clip frame sampling, as the released RDE-VOS trainer draws a clip's frames.

Unlike STCN's sampler (``dataset.vos_dataset.sample_frame_indices``: any unused frame within the
maximum skip of an already chosen one, then sorted), RDE walks forward: each next index is the
previous + 1 + U{0..max_skip}, capped so the remaining frames still fit in the video; the clip is
reversed with probability 1/2. Same signature as STCN's sampler, so a dataset can take either.

Further reading: RDE.md section 7 (project reference notes, not part of this repository).
"""


def sample_rde_frame_indices(rng, length, num_frames, max_skip):
    """``num_frames`` strictly monotonic indices in [0, length), consecutive gaps in 1..max_skip + 1."""
    if length < num_frames:
        raise ValueError(f"a video of {length} frames cannot give {num_frames} distinct frames")
    max_skip = max(0, int(max_skip))
    chosen = [int(rng.integers(length - num_frames + 1))]
    for remaining in range(num_frames - 1, 0, -1):
        step = 1 + int(rng.integers(max_skip + 1))
        chosen.append(min(chosen[-1] + step, length - remaining))
    if rng.random() < 0.5:
        chosen.reverse()
    return chosen
