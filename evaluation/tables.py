"""The DAVIS toolkit's two CSV files and printed tables for a ScoreTable.

``global_results-<split>.csv``: one row, columns J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay;
``per-sequence_results-<split>.csv``: columns Sequence,J-Mean,F-Mean with one row per object
``<sequence>_<k>``. Values are fractions in [0, 1], written with 3 decimals like the toolkit. Both files
are always recomputed (the toolkit silently reuses an old global CSV; we never do).
"""
from pathlib import Path

from util.atomic_files import atomic_file

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")
TOOLKIT_DECIMALS = 3


def csv_text(columns, rows, decimals):
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(row[c] if isinstance(row[c], str) else f"{row[c]:.{decimals}f}"
                              for c in columns))
    return "\n".join(lines) + "\n"


def davis_csv_paths(folder, split="val", year=2017):
    """(global, per-sequence) CSV paths of a result folder, named as the toolkit names them; 2016 tables
    get a ``-2016`` suffix so they never overwrite the 2017 ones of the same folder."""
    folder = Path(folder)
    name = split if int(year) == 2017 else f"{split}-{year}"
    return folder / f"global_results-{name}.csv", folder / f"per-sequence_results-{name}.csv"


def remove_files(paths):
    for path in paths:
        Path(path).unlink(missing_ok=True)


def write_davis_csvs(table, folder, split="val", decimals=TOOLKIT_DECIMALS, year=2017):
    """Write both CSVs into ``folder``; returns (global path, per-sequence path)."""
    global_path, sequence_path = davis_csv_paths(folder, split, year)
    for path, text in ((global_path, csv_text(GLOBAL_COLUMNS, [table.global_row()], decimals)),
                       (sequence_path, csv_text(SEQUENCE_COLUMNS, table.sequence_rows(), decimals))):
        with atomic_file(path) as temporary:
            temporary.write_text(text)
    return global_path, sequence_path


def aligned_text(columns, rows, decimals):
    cells = [list(columns)] + [[row[c] if isinstance(row[c], str) else f"{row[c]:.{decimals}f}"
                                for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in cells)


def absent_footnote(objects, limit=5):
    """A footnote when any object was absent from both ground truth and result on some frame: the DAVIS
    rule scores those frames J = F = 1. ``objects``: anything with ``name`` and ``absent_frames``."""
    absent = [o for o in objects if o.absent_frames]
    if not absent:
        return ""
    named = ", ".join(f"{o.name} ({o.absent_frames})" for o in absent[:limit])
    more = f" and {len(absent) - limit} more" if len(absent) > limit else ""
    return (f"* absent ids: {named}{more} frame(s) where neither the ground truth nor the result holds the "
            f"object; the DAVIS rule scores such frames J = F = 1 (ids absent from the first frame are "
            f"objects too when a higher id is present)\n")


def format_table(table, split="val", decimals=TOOLKIT_DECIMALS):
    """The global table and the per-object table as printable text (with the absent-id footnote)."""
    return (f"--------------------------- Global results for {split} ---------------------------\n"
            f"{aligned_text(GLOBAL_COLUMNS, [table.global_row()], decimals)}\n\n"
            f"---------- Per sequence results for {split} ----------\n"
            f"{aligned_text(SEQUENCE_COLUMNS, table.sequence_rows(), decimals)}\n"
            f"{absent_footnote(table.objects)}")
