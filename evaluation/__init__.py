"""Evaluation with the exact DAVIS 2017 toolkit definitions, and YouTubeVOS-style scores.

    from evaluation import evaluate_davis, write_davis_csvs, format_table
    table = evaluate_davis("results/", "../DAVIS/2017", split="val")
    print(format_table(table, "val")); write_davis_csvs(table, "results/", "val")
"""
from evaluation.davis import (EvaluationError, ObjectScores, ScoreTable, evaluate_davis, evaluate_sequences,
                              score_sequence)
from evaluation.metrics import (FrameScorer, boundary_map, boundary_tolerance, decay_bin_edges, f_measure,
                                jaccard, object_statistics)
from evaluation.tables import GLOBAL_COLUMNS, SEQUENCE_COLUMNS, format_table, write_davis_csvs

__all__ = ["GLOBAL_COLUMNS", "SEQUENCE_COLUMNS", "EvaluationError", "FrameScorer", "ObjectScores",
           "ScoreTable", "boundary_map", "boundary_tolerance", "decay_bin_edges", "evaluate_davis",
           "evaluate_sequences", "f_measure", "format_table", "jaccard", "object_statistics",
           "score_sequence", "write_davis_csvs"]
