"""DAVIS semi-supervised evaluation of a result folder, equal to the DAVIS 2017 toolkit's numbers.

    table = evaluate_davis("results/", "../DAVIS/2017", split="val")
    print(format_table(table)); write_davis_csvs(table, "results/", "val")

Protocol (the official DAVIS 2017 toolkit's): ground-truth annotations sorted by name, the first and
last frame of each sequence excluded; K = the largest label of frame 0 (void 255 counts as
background); a predicted label above K is an error; a label never predicted scores as an empty mask.
Ids need not be consecutive: every id 1..K is an object row, and on a frame where neither the ground
truth nor the result holds an id it scores J = F = 1 (the printed table says so in a footnote).
Each object is one row ``<sequence>_<k>``; the global table averages over objects, not sequences.
``year=2016`` merges every object (any non-zero label, 255 included) into one, for both sides.

Further reading: METRICS.md (project reference notes, not part of this repository).
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset.benchmark_readers import DavisReader
from dataset.folders import list_frames
from evaluation.metrics import VOID_LABEL, FrameScorer, object_statistics
from evaluation.tables import GLOBAL_COLUMNS, davis_csv_paths, remove_files
from util.palette import LabelImageError, read_label_png


class EvaluationError(ValueError):
    """Results or ground truth that cannot be scored; the message names the file."""


@dataclass
class ObjectScores:
    """Per-frame J and F of one object over its sequence's evaluated frames."""
    name: str
    j: np.ndarray
    f: np.ndarray
    absent_frames: int = 0  # frames where neither ground truth nor result holds the object (scored 1)

    def statistics(self):
        """{'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean', 'F-Recall', 'F-Decay'} of this object."""
        out = {}
        for measure, values in (("J", self.j), ("F", self.f)):
            mean, recall, decay = object_statistics(values)
            out.update({f"{measure}-Mean": mean, f"{measure}-Recall": recall, f"{measure}-Decay": decay})
        return out


@dataclass
class ScoreTable:
    """Scores of every object of a benchmark run; ``global_row`` is the paper's table."""
    objects: list

    def global_row(self):
        if not self.objects:
            raise EvaluationError("no objects to average: the ground truth holds no object")
        stats = [obj.statistics() for obj in self.objects]
        row = {name: float(np.mean([s[name] for s in stats])) for name in GLOBAL_COLUMNS[1:]}
        return {"J&F-Mean": (row["J-Mean"] + row["F-Mean"]) / 2.0, **row}

    def sequence_rows(self):
        return [{"Sequence": obj.name, "J-Mean": float(np.mean(obj.j)), "F-Mean": float(np.mean(obj.f))}
                for obj in self.objects]


def read_labels(path, what):
    """Label map of a PNG; EvaluationError naming the file (``what``: ground truth / result)."""
    try:
        return read_label_png(path)[0]
    except LabelImageError as error:
        raise EvaluationError(f"{what}: {error}") from None


def score_sequence(name, gt_paths, result_folder, merge_objects=False):
    """ObjectScores of every object of one sequence.

    gt_paths: every ground-truth annotation PNG of the sequence (first and last included, any order);
    result_folder: holds ``<frame>.png`` for the evaluated frames (palette, grayscale or mapped RGB).
    """
    gt_paths = sorted(gt_paths, key=lambda p: Path(p).name)
    if len(gt_paths) < 3:
        raise EvaluationError(f"sequence {name}: {len(gt_paths)} annotated frame(s); the DAVIS protocol "
                              f"scores frames 1..n-2 and needs at least 3")
    result_folder = Path(result_folder)
    if not result_folder.is_dir():
        raise EvaluationError(f"{result_folder}: result folder of sequence {name} is missing")
    first = _ground_truth(read_labels(gt_paths[0], "ground truth"), merge_objects)
    num_objects = int(first.max(initial=0))
    scorer = FrameScorer(num_objects, *first.shape)
    j_rows, f_rows, absent = [], [], np.zeros(num_objects, np.int64)
    for gt_path in gt_paths[1:-1]:
        gt = _ground_truth(read_labels(gt_path, "ground truth"), merge_objects)
        result_path = result_folder / (Path(gt_path).stem + ".png")
        if not result_path.is_file():
            raise EvaluationError(f"{result_path}: result of sequence {name} frame {Path(gt_path).stem} "
                                  f"is missing")
        pred = read_labels(result_path, "result")
        if merge_objects:
            pred = (pred != 0).astype(np.uint8)
        if pred.shape != gt.shape:
            raise EvaluationError(f"{result_path}: result is {pred.shape[0]}x{pred.shape[1]} but the ground "
                                  f"truth {gt_path} is {gt.shape[0]}x{gt.shape[1]}")
        if pred.max(initial=0) > num_objects:
            raise EvaluationError(
                f"{result_path}: predicted label {int(pred.max())} but frame 0 of the ground truth of "
                f"sequence {name} has {num_objects} object(s)")
        j, f = scorer(gt, pred)
        j_rows.append(j)
        f_rows.append(f)
        absent += scorer.absent
    j_all, f_all = np.array(j_rows).T, np.array(f_rows).T
    return [ObjectScores(f"{name}_{k + 1}", j_all[k], f_all[k], int(absent[k])) for k in range(num_objects)]


def _ground_truth(labels, merge_objects):
    if merge_objects:
        return (labels != 0).astype(np.uint8)
    labels = labels.copy()
    labels[labels == VOID_LABEL] = 0
    return labels


def evaluate_davis(results, davis_root, split="val", year=2017, resolution="480p", sequences=None,
                   workers=None):
    """ScoreTable of the result folder ``results`` (``<seq>/<frame>.png``) against a DAVIS split.

    Old ``global_results-<split>.csv`` / ``per-sequence_results-<split>.csv`` (``-<split>-2016`` for
    2016) in ``results`` are deleted
    first, so a failed evaluation never leaves a stale table that looks current.
    """
    reader = DavisReader(davis_root, split=split, year=year, resolution=resolution)
    names = reader.sequences if sequences is None else list(sequences)
    jobs = []
    for name in names:
        gt_dir = reader.annotation_root / name
        gt_paths = list_frames(gt_dir, (".png",)) if gt_dir.is_dir() else []
        if not gt_paths:
            raise EvaluationError(f"{gt_dir}: ground truth of sequence {name} (listed in "
                                  f"{reader.image_set}) is missing")
        jobs.append((name, gt_paths, Path(results) / name))
    # the inputs are there: from now on an old table would no longer describe this folder
    remove_files(davis_csv_paths(results, split, year))
    return evaluate_sequences(jobs, merge_objects=(int(year) == 2016), workers=workers)


def evaluate_sequences(jobs, merge_objects=False, workers=None):
    """ScoreTable of ``jobs`` = [(sequence name, gt PNG paths, result folder)], in the given order."""
    workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
    if workers == 1:
        per_sequence = [score_sequence(*job, merge_objects=merge_objects) for job in jobs]
    else:
        with ThreadPoolExecutor(workers) as pool:  # PNG decoding and OpenCV release the GIL
            per_sequence = list(pool.map(lambda job: score_sequence(*job, merge_objects=merge_objects), jobs))
    return ScoreTable([obj for objects in per_sequence for obj in objects])
