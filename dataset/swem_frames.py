"""SWEM clip frame sampling, as the published SWEM trainer draws a clip's frames.

A random anchor; each further frame is drawn uniformly among the unused frames within ``max_skip``
positions beyond the current left- or right-most chosen frame (SWEM's cur_skip + 1; the shared
curriculum's ``max_skip``), a window capped by the mean spacing the video allows for the clip;
indices sorted, reversed with probability 1/2. Same signature as STCN's sampler
(``dataset.vos_dataset.sample_frame_indices``), so a dataset can take either.

Further reading: SWEM.md §5.3 (project reference notes, not part of this repository).
"""


def sample_swem_frame_indices(rng, length, num_frames, max_skip):
    if length < num_frames:
        raise ValueError(f"a video of {length} frames cannot give {num_frames} distinct frames")
    window = max(1, min(int(max_skip), length // num_frames))
    chosen = [int(rng.integers(length))]
    while len(chosen) < num_frames:
        low, high = min(chosen), max(chosen)
        candidates = [i for i in range(max(0, low - window), low)] + \
                     [i for i in range(high + 1, min(length, high + window + 1))]
        if not candidates:   # the span reached both ends of the video: fill it from inside
            candidates = sorted(set(range(low, high + 1)) - set(chosen))
        chosen.append(int(candidates[rng.integers(len(candidates))]))
    chosen.sort()
    if rng.random() < 0.5:
        chosen.reverse()
    return chosen
