"""The DAVIS 2017 toolkit's J and F, per-object statistics and tables (../shared/reference/METRICS.md).

Hand-computed cases first, then the vectorised scorer against a literal full-frame implementation
of the definitions, then sequence- and folder-level behaviour.
"""
import math
import time

import numpy as np
import pytest

from evaluation import (GLOBAL_COLUMNS, EvaluationError, FrameScorer, ObjectScores, ScoreTable, boundary_map,
                        boundary_tolerance, decay_bin_edges, evaluate_sequences, f_measure, format_table, jaccard,
                        object_statistics, score_sequence, write_davis_csvs)
from util.palette import write_label_png


def box(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


# ---------------------------------------------------------------- J
def test_jaccard_hand_cases():
    empty = np.zeros((5, 5), bool)
    pixel = box((5, 5), (2, 3), (2, 3))
    assert jaccard(empty, empty) == 1.0
    assert jaccard(pixel, pixel) == 1.0
    assert jaccard(pixel, empty) == 0.0 and jaccard(empty, pixel) == 0.0
    square = box((6, 6), (1, 3), (1, 3))
    shifted = box((6, 6), (1, 3), (2, 4))  # overlap 2, union 6
    assert jaccard(square, shifted) == pytest.approx(1 / 3)


# ---------------------------------------------------------------- boundary
def test_boundary_of_one_pixel_marks_it_and_its_north_west_neighbours():
    bmap = boundary_map(box((5, 5), (2, 3), (2, 3)))
    assert sorted(zip(*np.nonzero(bmap))) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_boundary_never_on_the_image_border():
    assert not boundary_map(np.ones((4, 6), bool)).any()
    corner = box((5, 5), (4, 5), (4, 5))  # bottom-right pixel: never compared itself
    assert sorted(zip(*np.nonzero(boundary_map(corner)))) == [(3, 3), (3, 4), (4, 3)]


def test_boundary_of_a_square_is_a_ring_of_4n_pixels():
    bmap = boundary_map(box((20, 20), (5, 15), (5, 15)))
    assert bmap.sum() == 40
    assert bmap[4, 4] and bmap[14, 14] and not bmap[15, 15] and not bmap[10, 10]


def test_tolerance_is_ceiled_fraction_of_the_diagonal():
    assert boundary_tolerance(480, 854) == 8
    assert boundary_tolerance(64, 96) == 1
    assert boundary_tolerance(1080, 1920) == math.ceil(0.008 * math.hypot(1080, 1920)) == 18


# ---------------------------------------------------------------- F
def test_f_empty_and_full_masks():
    empty = np.zeros((10, 10), bool)
    full = np.ones((10, 10), bool)
    left = box((10, 10), (0, 10), (0, 5))
    assert f_measure(empty, empty) == 1.0
    assert f_measure(empty, left) == 0.0 and f_measure(left, empty) == 0.0
    assert f_measure(full, full) == 1.0          # both boundaries empty
    assert f_measure(full, left) == 0.0          # exactly one boundary empty
    assert f_measure(full, empty) == 1.0         # a full-frame mask has no boundary either


@pytest.mark.parametrize("shift, expected", [(0, 1.0), (1, 1.0), (2, 0.0), (5, 0.0)])
def test_f_of_a_shifted_vertical_edge(shift, expected):
    # 20x20: r = ceil(0.008 * 28.3) = 1. The boundary of columns 0..c-1 is column c-1 alone.
    gt = box((20, 20), (0, 20), (0, 8))
    pred = box((20, 20), (0, 20), (0, 8 + shift))
    assert f_measure(gt, pred) == expected


def test_f_partial_match_hand_computed():
    # gt: columns 0..9 of a 20x20 image -> boundary = column 9, 20 pixels.
    # pred: rows 0..9 of the same columns -> boundary = column 9 rows 0..9 plus row 9 columns 0..9
    # (19 pixels). With r = 1: precision = (10 + 1) / 19, recall = (10 + 1) / 20.
    gt = box((20, 20), (0, 20), (0, 10))
    pred = box((20, 20), (0, 10), (0, 10))
    precision, recall = 11 / 19, 11 / 20
    assert f_measure(gt, pred) == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-12)


def test_f_explicit_radius():
    gt = box((20, 20), (0, 20), (0, 8))
    pred = box((20, 20), (0, 20), (0, 11))
    assert f_measure(gt, pred, radius=2) == 0.0 and f_measure(gt, pred, radius=3) == 1.0


# ---------------------------------------------------------------- vectorised scorer == definitions
def reference_boundary(mask):
    """Literal METRICS.md definition, pixel by pixel."""
    h, w = mask.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (1, 1)):
                if y + dy < h and x + dx < w and mask[y, x] != mask[y + dy, x + dx]:
                    out[y, x] = True
    return out


def reference_dilate(bmap, r):
    h, w = bmap.shape
    out = np.zeros_like(bmap)
    for y, x in zip(*np.nonzero(bmap)):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dy * dy + dx * dx <= r * r and 0 <= y + dy < h and 0 <= x + dx < w:
                    out[y + dy, x + dx] = True
    return out


def reference_scores(gt, pred, k):
    r = math.ceil(0.008 * math.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))
    js, fs = [], []
    for label in range(1, k + 1):
        g, p = gt == label, pred == label
        union = (g | p).sum()
        js.append(1.0 if union == 0 else (g & p).sum() / union)
        bg, bp = reference_boundary(g), reference_boundary(p)
        if bg.sum() == 0 and bp.sum() == 0:
            fs.append(1.0)
            continue
        if bg.sum() == 0 or bp.sum() == 0:
            fs.append(0.0)
            continue
        precision = (bp & reference_dilate(bg, r)).sum() / bp.sum()
        recall = (bg & reference_dilate(bp, r)).sum() / bg.sum()
        fs.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return np.array(js), np.array(fs)


def random_labels(rng, shape, k):
    labels = np.zeros(shape, np.uint8)
    for label in range(1, k + 1):
        if rng.random() < 0.15:
            continue  # sometimes absent
        y0, x0 = rng.integers(-3, shape[0]), rng.integers(-3, shape[1])
        h, w = rng.integers(1, shape[0]), rng.integers(1, shape[1])
        labels[max(0, y0):y0 + h, max(0, x0):x0 + w] = label  # often touching the border
        holes = rng.random(shape) < 0.05
        labels[holes & (labels == label)] = 0
    return labels


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_scorer_equals_the_definitions(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(6, 40)), int(rng.integers(6, 200)))  # r from 1 to 2
    k = 3
    gt, pred = random_labels(rng, shape, k), random_labels(rng, shape, k)
    if seed == 0:
        pred = gt.copy()
    j, f = FrameScorer(k, *shape)(gt, pred)
    j_ref, f_ref = reference_scores(gt, pred, k)
    np.testing.assert_allclose(j, j_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f, f_ref, rtol=0, atol=1e-12)


def test_scorer_ignores_ground_truth_labels_above_k():
    gt = np.array([[1, 1, 2, 2]] * 4, np.uint8)
    j, f = FrameScorer(1, 4, 4)(gt, (gt == 1).astype(np.uint8))
    assert j.tolist() == [1.0] and f.tolist() == [1.0]


# ---------------------------------------------------------------- statistics
def test_statistics_mean_strict_recall_and_overlapping_decay_bins():
    values = np.arange(10) / 10  # 0.0 .. 0.9
    assert decay_bin_edges(10).tolist() == [0, 2, 5, 7, 9]  # 5.5 rounds up, not to even
    mean, recall, decay = object_statistics(values)
    assert mean == pytest.approx(0.45)
    assert recall == pytest.approx(0.4)  # 0.5 itself is not > 0.5
    assert decay == pytest.approx(np.mean(values[0:3]) - np.mean(values[7:10]))  # 0.1 - 0.8


def test_decay_halves_round_up_for_three_frames():
    assert decay_bin_edges(3).tolist() == [0, 1, 1, 2, 2]
    _, _, decay = object_statistics([1.0, 0.5, 0.0])
    assert decay == pytest.approx(0.75 - 0.0)


def test_decay_of_one_frame_is_zero():
    assert object_statistics([0.7]) == (pytest.approx(0.7), 1.0, 0.0)


def test_decay_past_256_frames_uses_the_true_frame_indices():
    n = 300
    assert decay_bin_edges(n).tolist() == [0, 75, 150, 224, 299]
    values = (np.arange(n) >= 224).astype(float)
    assert object_statistics(values)[2] == pytest.approx(-1.0)


# ---------------------------------------------------------------- sequences and folders
def write_sequence(folder, frames):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, labels in enumerate(frames):
        path = folder / f"{t:05d}.png"
        write_label_png(path, labels)
        paths.append(path)
    return paths


def square_frames(n, shape=(20, 20)):
    frames = []
    for t in range(n):
        labels = np.zeros(shape, np.uint8)
        labels[2:8, 2 + t:8 + t] = 1
        labels[12:18, 10:16] = 2
        frames.append(labels)
    return frames


def test_perfect_results_score_one_and_skip_first_and_last_frames(tmp_path):
    frames = square_frames(5)
    gt = write_sequence(tmp_path / "gt", frames)
    results = frames.copy()
    results[0] = np.zeros_like(frames[0])   # first and last frames are not evaluated
    write_sequence(tmp_path / "res", results[:-1])  # and the last may even be absent
    objects = score_sequence("seq", gt, tmp_path / "res")
    assert [o.name for o in objects] == ["seq_1", "seq_2"]
    for obj in objects:
        assert obj.j.tolist() == [1.0] * 3 and obj.f.tolist() == [1.0] * 3


def test_missing_object_scores_zero_where_it_exists_and_one_where_it_does_not(tmp_path):
    frames = square_frames(5)
    frames[2][frames[2] == 2] = 0   # object 2 absent from the ground truth of frame 2
    gt = write_sequence(tmp_path / "gt", frames)
    write_sequence(tmp_path / "res", [np.where(f == 2, 0, f) for f in frames])  # never predicts 2
    second = score_sequence("seq", gt, tmp_path / "res")[1]
    assert second.j.tolist() == [0.0, 1.0, 0.0] and second.f.tolist() == [0.0, 1.0, 0.0]


def test_void_label_counts_as_background(tmp_path):
    frames = square_frames(3)
    frames[1][0:2, :] = 255
    gt = write_sequence(tmp_path / "gt", frames)
    write_sequence(tmp_path / "res", square_frames(3))
    assert [o.j.tolist() for o in score_sequence("seq", gt, tmp_path / "res")] == [[1.0], [1.0]]


def test_year_2016_merges_objects(tmp_path):
    frames = square_frames(3)
    gt = write_sequence(tmp_path / "gt", frames)
    write_sequence(tmp_path / "res", [(f != 0).astype(np.uint8) * 3 for f in frames])
    objects = score_sequence("seq", gt, tmp_path / "res", merge_objects=True)
    assert [o.name for o in objects] == ["seq_1"] and objects[0].j.tolist() == [1.0]


@pytest.mark.parametrize("problem, message", [
    ("label", r"00001\.png: predicted label 3 but frame 0 .* has 2 object"),
    ("size", r"00001\.png: result is 10x20 but the ground truth"),
    ("missing", r"00002\.png: result of sequence seq frame 00002 is missing"),
    ("short", r"2 annotated frame\(s\)"),
])
def test_bad_results_raise_one_clear_error_naming_the_file(tmp_path, problem, message):
    frames = square_frames(4)
    results = [f.copy() for f in frames]
    if problem == "label":
        results[1][0, 0] = 3
    if problem == "size":
        results[1] = results[1][:10]
    if problem == "missing":
        results = results[:2]
    if problem == "short":
        frames = frames[:2]
    gt = write_sequence(tmp_path / "gt", frames)
    write_sequence(tmp_path / "res", results)
    with pytest.raises(EvaluationError, match=message):
        score_sequence("seq", gt, tmp_path / "res")


def test_global_table_weights_every_object_equally_and_csvs_match_the_toolkit(tmp_path):
    table = ScoreTable([
        ObjectScores("a_1", np.array([1.0, 1.0]), np.array([1.0, 1.0])),
        ObjectScores("b_1", np.array([0.0, 0.0]), np.array([0.5, 0.5])),
        ObjectScores("b_2", np.array([0.0, 0.0]), np.array([0.5, 0.5])),
    ])
    row = table.global_row()
    assert row["J-Mean"] == pytest.approx(1 / 3)  # per object, not (1 + 0) / 2 per sequence
    assert row["F-Mean"] == pytest.approx(2 / 3)
    assert row["J&F-Mean"] == pytest.approx(0.5)
    assert row["F-Recall"] == pytest.approx(1 / 3)  # 0.5 is not > 0.5
    global_csv, sequence_csv = write_davis_csvs(table, tmp_path, "val")
    assert global_csv.name == "global_results-val.csv"
    assert global_csv.read_text().splitlines() == [
        ",".join(GLOBAL_COLUMNS), "0.500,0.333,0.333,0.000,0.667,0.333,0.000"]
    assert sequence_csv.read_text().splitlines() == [
        "Sequence,J-Mean,F-Mean", "a_1,1.000,1.000", "b_1,0.000,0.500", "b_2,0.000,0.500"]
    printed = format_table(table, "val")
    assert "J&F-Mean" in printed and "b_2" in printed
    # a 2016 table of the same folder gets its own names: the 2017 files are left as they are
    merged = ScoreTable([ObjectScores("a_1", np.array([0.5]), np.array([0.5]))])
    paths_2016 = write_davis_csvs(merged, tmp_path, "val", year=2016)
    assert [p.name for p in paths_2016] == ["global_results-val-2016.csv", "per-sequence_results-val-2016.csv"]
    assert sequence_csv.read_text().splitlines()[1] == "a_1,1.000,1.000"
    assert paths_2016[1].read_text().splitlines()[1] == "a_1,0.500,0.500"


def test_csvs_are_always_recomputed(tmp_path):
    (tmp_path / "global_results-val.csv").write_text("stale\n")
    table = ScoreTable([ObjectScores("a_1", np.ones(2), np.ones(2))])
    write_davis_csvs(table, tmp_path, "val")
    assert (tmp_path / "global_results-val.csv").read_text().startswith("J&F-Mean")


def test_sequences_keep_their_order_with_parallel_workers(tmp_path):
    jobs = []
    for name in ("zeta", "alpha", "mid"):
        frames = square_frames(3)
        jobs.append((name, write_sequence(tmp_path / "gt" / name, frames),
                     write_sequence(tmp_path / "res" / name, frames)[0].parent))
    table = evaluate_sequences(jobs, workers=2)
    assert [o.name for o in table.objects] == ["zeta_1", "zeta_2", "alpha_1", "alpha_2", "mid_1", "mid_2"]


def ellipse_labels(t, shape=(480, 854)):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    labels = np.zeros(shape, np.uint8)
    for k in (1, 2):
        cy, cx = 150 + 60 * k + 2 * t, 250 + 150 * k + 3 * t
        labels[((yy - cy) / 90.0) ** 2 + ((xx - cx) / 120.0) ** 2 <= 1] = k
    return labels


@pytest.mark.benchmark
def test_davis_sized_result_set_evaluates_in_seconds(tmp_path, request):
    if "benchmark" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("timing benchmark: run with -m benchmark")
    jobs = []
    for s in range(30):
        frames = [ellipse_labels(t) for t in range(70)]
        gt = write_sequence(tmp_path / "gt" / f"s{s}", frames)
        write_sequence(tmp_path / "res" / f"s{s}", [np.roll(f, 3, axis=1) for f in frames])
        jobs.append((f"s{s}", gt, tmp_path / "res" / f"s{s}"))
    start = time.perf_counter()
    table = evaluate_sequences(jobs)
    elapsed = time.perf_counter() - start
    print(f"30 sequences x 70 frames x 480p, {len(table.objects)} objects: {elapsed:.1f} s")
    assert elapsed < 30


# ---------------------------------------------------------------- YouTubeVOS-style scores
def test_youtube_scores_count_frames_after_each_first_mask_and_split_seen_unseen(tmp_path):
    import json

    from evaluation.youtube import evaluate_youtube, write_youtube_csvs
    shape = (12, 16)
    frames = ["00000", "00005", "00010"]
    gt = []
    for t in range(3):
        labels = np.zeros(shape, np.uint8)
        labels[1:5, 1:5] = 3                       # seen category, given at 00000
        if t >= 1:
            labels[7:11, 8:14] = 7                 # unseen category, given at 00005
        gt.append(labels)
    meta = {"videos": {"v": {"objects": {
        "3": {"category": "cat", "frames": frames},
        "7": {"category": "zebra", "frames": frames[1:]}}}}}
    (tmp_path / "valid").mkdir()
    (tmp_path / "valid" / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "meta.json").write_text(json.dumps(
        {"videos": {"t": {"objects": {"1": {"category": "cat", "frames": ["00000"]}}}}}))
    results = []
    for t, labels in enumerate(gt):
        out = labels.copy()
        if t == 0:
            out[:] = 0                             # wrong on the given frame: not scored
        if t == 2:
            out[out == 7] = 0                      # object 7 missed on 00010
        results.append(out)
    for t, name in enumerate(frames):
        write_label_png(tmp_path / "valid_gt" / "Annotations" / "v" / f"{name}.png", gt[t])
        write_label_png(tmp_path / "res" / "Annotations" / "v" / f"{name}.png", results[t])
    table = evaluate_youtube(tmp_path / "res", tmp_path, split="valid")
    by_name = {o.name: o for o in table.objects}
    assert by_name["v_3"].seen and by_name["v_3"].j.tolist() == [1.0, 1.0]   # 00005, 00010
    assert not by_name["v_7"].seen and by_name["v_7"].j.tolist() == [0.0]   # 00010 only
    row = table.global_row()
    assert (row["J-Seen"], row["F-Seen"], row["J-Unseen"], row["F-Unseen"]) == (1.0, 1.0, 0.0, 0.0)
    assert row["Overall"] == 0.5
    global_csv, object_csv = write_youtube_csvs(table, tmp_path / "res", "valid")
    assert global_csv.read_text().splitlines() == ["Overall,J-Seen,F-Seen,J-Unseen,F-Unseen",
                                                   "0.500,1.000,1.000,0.000,0.000"]
    assert object_csv.read_text().splitlines()[1:] == ["v_3,yes,1.000,1.000", "v_7,no,0.000,0.000"]


def test_youtube_scores_need_the_synthetic_ground_truth(tmp_path):
    import json

    from evaluation.youtube import evaluate_youtube
    (tmp_path / "valid").mkdir()
    (tmp_path / "valid" / "meta.json").write_text(json.dumps({"videos": {}}))
    with pytest.raises(EvaluationError, match=r"valid_gt/Annotations: full ground truth is missing"):
        evaluate_youtube(tmp_path / "res", tmp_path, split="valid")
