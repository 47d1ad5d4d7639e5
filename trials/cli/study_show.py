"""What `fastscale study run|show` print: the results table (compact for a comparison's
study), the one-line summary, the study's size, and what an interrupted run kept."""

from __future__ import annotations

import click

from spaces.units import format_quantity
from trials.cli.common import echo_json, print_table
from trials.study.live_view import one_line, short_name
from trials.study.results import COLUMNS as RESULT_COLUMNS
from trials.study.results import by_error, load_results, study_size
from trials.study.store import StudyStore

NOT_SHOWN = {
    "family",
    "bottleneck",
    "stem_width",
    "head_width",
    "se_ratio",
    "in_channels",
    "num_classes",
    "hostname",
    "failures",
    "epochs_done",
    "epochs",
    "seed",
    "failure",
    "method",
    "space",
    "regime",
    "sampler",
    "stopped_by",
}
# The results table's own columns that lead the shown table, in its order (the spec fields
# and tags not in NOT_SHOWN follow them).
SHOW_COLUMNS = tuple(c for c in RESULT_COLUMNS if c not in NOT_SHOWN)


# A comparison's study (trials.compare.candidates) tags every candidate with these: its table shows them
# and one compact spec column instead of ~15 spec-field and hash columns.
COMPARE_TAGS = ("method", "level", "regime", "strategy", "phase", "seed")


def show_rows(df) -> tuple[list[dict], list[str]]:
    """Records (NaN as None) and the table's columns: results, spec fields, tags, failure."""
    import pandas as pd

    if "method" in df.columns and "phase" in df.columns:  # a comparison: its report compares
        records = df.astype(object).where(pd.notna(df), None).to_dict("records")
        return compact_rows(records, df)
    df = by_error(df)
    records = df.astype(object).where(pd.notna(df), None).to_dict("records")
    for r in records:
        r["best"] = "best" if r["best"] else ""
    cols = [c for c in SHOW_COLUMNS if c in df.columns]
    cols.insert(cols.index("status") + 1, "best")
    cols += [c for c in df.columns if c not in cols and c not in NOT_SHOWN and c != "best"]
    if df["failure"].notna().any():
        cols.append("failure")
    if stopped_rows(records):
        cols.insert(cols.index("status") + 1, "stopped")
    for r in records:
        if r.get("node"):
            r["node"] = str(r["node"])[:8]
    return records, cols


def stopped_rows(records: list[dict]) -> int:
    """Mark rows stopped early: 'asha @1/4' (by what, after which epoch of how many); their
    error is the validation error at that epoch, not a fully trained error."""
    count = 0
    for r in records:
        if r.get("status") == "stopped":
            count += 1
            of = f"/{r['epochs']}" if r.get("epochs") else ""
            r["stopped"] = f"{r.get('stopped_by')} @{r.get('epochs_done')}{of}"
    return count


def no_space(exc: BaseException) -> str | None:
    """' (PATH)' (or '') when a full disk caused `exc` (also wrapped by Ray), else None."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f" ({exc.filename})" if exc.filename else ""
        if "No space left on device" in str(exc):
            return ""
        exc = exc.__cause__ or exc.__context__
    return None


def kept(out) -> str:
    """What an interrupted run leaves, and how to go on."""

    try:
        df = load_results(out)
    except Exception:
        return "nothing was recorded yet"
    done = int(df["status"].isin(["done", "stopped"]).sum()) if len(df) else 0
    return (
        f"{done} of {len(df)} candidates finished are kept in {out}; interrupted ones resume "
        f"from their last checkpoint with `fastscale study run --out {out}`"
    )


def compact_rows(records: list[dict], df) -> tuple[list[dict], list[str]]:
    """A comparison directory: key, status, error %, complexity in units, epoch time, the
    comparison's tags and the network in one short column."""

    rows = []
    stopped_rows(records)
    for r in records:
        row = {k: r.get(k) for k in ("key", "status")}
        if r.get("stopped"):
            row["status"] = f"stopped {r['stopped']}"
        row["error %"] = None if r.get("error") is None else round(100 * float(r["error"]), 2)
        for k in ("flops", "params", "acts"):
            row[k] = None if r.get(k) is None else format_quantity(r[k])
        row["epoch s"] = None if r.get("epoch_time") is None else round(r["epoch_time"], 1)
        row.update({k: r.get(k) for k in COMPARE_TAGS if k in df.columns})
        row["network"] = short_name(r) if r.get("block") or r.get("family") else None
        if r.get("failure"):
            row["failure"] = one_line(r["failure"], 60)
        rows.append(row)
    cols = list(rows[0]) if rows else []
    if any("failure" in r for r in rows) and "failure" not in cols:
        cols.append("failure")
    return rows, cols


def summary(df) -> str:
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    parts = [f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "running", "pending")]
    if counts.get("stopped"):  # their errors are at the epoch they stopped: not comparable
        parts.insert(1, f"{counts['stopped']} stopped early (error at that epoch)")
    return f"{len(df)} candidates: " + ", ".join(parts)


def print_results(df, as_json: bool, directory) -> None:
    records, cols = show_rows(df)
    if as_json:
        for r in records:  # JSON: a boolean, not the table's marker
            if "best" in r:
                r["best"] = r["best"] == "best"
        echo_json(records)
        return
    print_table(records, cols, title=f"{directory}: {summary(df)}; {disk_use(directory)}")
    best = next((r for r in records if r.get("best") == "best"), None)
    if best is not None:
        click.echo(
            f"best: {best['key']}, error {100 * float(best['error']):.2f}% "
            f"({format_quantity(best['flops'], 'F')}); sorted by error, done candidates first"
        )
    elif "best" in cols and len(records):
        click.echo("best: none yet (no candidate has finished training)")


def disk_use(directory) -> str:
    """The study's size on disk (and its checkpoints kept in another storage)."""

    inside, outside = study_size(StudyStore(directory))
    text = f"{human_bytes(inside)} on disk"
    return text + (f" + {human_bytes(outside)} of checkpoints elsewhere" if outside else "")


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
