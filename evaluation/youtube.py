"""YouTubeVOS-style scores for our synthetic YouTubeVOS sets (the real server cannot be reached here).

Per object: J and F (the DAVIS definitions of ``metrics.py``) on every ground-truth frame strictly
after the frame where its mask is given (from ``<split>/meta.json``), averaged over those frames.
Objects whose category occurs in ``train/meta.json`` are "seen", the others "unseen" (all seen when
there is no train meta). J-Seen, F-Seen, J-Unseen, F-Unseen average over objects; Overall is the mean
of those of the four that exist. Ground truth: ``<root>/<split>_gt/Annotations/<video>/<frame>.png``,
which only synthetic sets ship. Results: ``<results>/Annotations/<video>/<frame>.png`` or
``<results>/<video>/<frame>.png``.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset.benchmark_readers import BenchmarkLayoutError, read_youtube_meta
from dataset.folders import list_frames
from evaluation.davis import EvaluationError, read_labels
from evaluation.metrics import FrameScorer
from evaluation.tables import TOOLKIT_DECIMALS, absent_footnote, aligned_text, csv_text, remove_files
from util.atomic_files import atomic_file

YOUTUBE_COLUMNS = ("Overall", "J-Seen", "F-Seen", "J-Unseen", "F-Unseen")
OBJECT_COLUMNS = ("Object", "Seen", "J-Mean", "F-Mean")


@dataclass
class YouTubeObject:
    name: str
    seen: bool
    j: np.ndarray
    f: np.ndarray
    absent_frames: int = 0  # frames where neither ground truth nor result holds the object (scored 1)


@dataclass
class YouTubeTable:
    objects: list

    def global_row(self):
        row = {}
        for group, seen in (("Seen", True), ("Unseen", False)):
            members = [o for o in self.objects if o.seen == seen]
            row[f"J-{group}"] = float(np.mean([o.j.mean() for o in members])) if members else float("nan")
            row[f"F-{group}"] = float(np.mean([o.f.mean() for o in members])) if members else float("nan")
        present = [v for v in row.values() if not np.isnan(v)]
        if not present:
            raise EvaluationError("no object has a ground-truth frame after its first mask")
        return {"Overall": float(np.mean(present)), **row}

    def object_rows(self):
        return [{"Object": o.name, "Seen": "yes" if o.seen else "no", "J-Mean": float(o.j.mean()),
                 "F-Mean": float(o.f.mean())} for o in self.objects]


def _load_meta(path):
    try:
        return read_youtube_meta(path)
    except BenchmarkLayoutError as error:
        raise EvaluationError(str(error)) from None


def _seen_categories(root):
    train_meta = Path(root) / "train" / "meta.json"
    if not train_meta.is_file():
        return None
    return {info["category"] for objects in _load_meta(train_meta).values() for info in objects.values()}


def evaluate_youtube(results, yv_root, split="valid"):
    """YouTubeTable of the result folder against the full ground truth of a synthetic set."""
    root = Path(yv_root)
    meta = _load_meta(root / split / "meta.json")
    gt_root = root / f"{split}_gt" / "Annotations"
    if not gt_root.is_dir():
        raise EvaluationError(f"{gt_root}: full ground truth is missing (only synthetic sets ship it; "
                              f"real YouTubeVOS results are scored by the benchmark server)")
    results = Path(results)
    remove_files(youtube_csv_paths(results, split))  # never leave an old table next to new results
    result_root = results / "Annotations" if (results / "Annotations").is_dir() else results
    seen_categories = _seen_categories(root)
    objects = []
    for video in sorted(meta):
        objects.extend(_score_video(video, meta[video], gt_root / video,
                                    result_root / video, seen_categories))
    return YouTubeTable(objects)


def _score_video(video, meta_objects, gt_dir, result_dir, seen_categories):
    first = {obj_id: info["frames"][0] for obj_id, info in meta_objects.items() if info["frames"]}
    gt_paths = list_frames(gt_dir, (".png",)) if gt_dir.is_dir() else []
    if not gt_paths:
        raise EvaluationError(f"{gt_dir}: ground truth of video {video} is missing")
    scores = {obj: ([], []) for obj in first}
    absent = {obj: 0 for obj in first}
    scorers = {}
    for gt_path in gt_paths:
        active = sorted(obj for obj, frame in first.items() if gt_path.stem > frame)
        if not active:
            continue
        result_path = result_dir / gt_path.name
        if not result_path.is_file():
            raise EvaluationError(f"{result_path}: result of video {video} frame {gt_path.stem} is missing")
        gt, pred = read_labels(gt_path, "ground truth"), read_labels(result_path, "result")
        if pred.shape != gt.shape:
            raise EvaluationError(f"{result_path}: result is {pred.shape[0]}x{pred.shape[1]} but the ground "
                                  f"truth {gt_path} is {gt.shape[0]}x{gt.shape[1]}")
        key = (gt.shape, tuple(active))
        if key not in scorers:
            scorers[key] = FrameScorer(0, *gt.shape, labels=active)
        j, f = scorers[key](gt, pred)
        for obj, j_value, f_value, missing in zip(active, j, f, scorers[key].absent):
            scores[obj][0].append(j_value)
            scores[obj][1].append(f_value)
            absent[obj] += int(missing)
    out = []
    for obj in sorted(scores):
        j_values, f_values = scores[obj]
        if not j_values:
            continue  # given on the last annotated frame: nothing to score
        category = meta_objects[obj]["category"]
        seen = seen_categories is None or category in seen_categories
        out.append(YouTubeObject(f"{video}_{obj}", seen, np.array(j_values), np.array(f_values), absent[obj]))
    return out


def youtube_csv_paths(folder, split="valid"):
    folder = Path(folder)
    return folder / f"youtube_results-{split}.csv", folder / f"youtube_per-object_results-{split}.csv"


def write_youtube_csvs(table, folder, split="valid", decimals=TOOLKIT_DECIMALS):
    """``youtube_results-<split>.csv`` (Overall, J/F seen/unseen) and the per-object CSV; returns paths."""
    global_path, object_path = youtube_csv_paths(folder, split)
    for path, text in ((global_path, csv_text(YOUTUBE_COLUMNS, [table.global_row()], decimals)),
                       (object_path, csv_text(OBJECT_COLUMNS, table.object_rows(), decimals))):
        with atomic_file(path) as temporary:
            temporary.write_text(text)
    return global_path, object_path


def format_youtube_table(table, split="valid", decimals=TOOLKIT_DECIMALS):
    return (f"----------------- YouTubeVOS-style results for {split} -----------------\n"
            f"{aligned_text(YOUTUBE_COLUMNS, [table.global_row()], decimals)}\n\n"
            f"{aligned_text(OBJECT_COLUMNS, table.object_rows(), decimals)}\n"
            f"{absent_footnote(table.objects)}")
