"""The comparison report's sentences: the one-line answer per regime, the verdict, and the
paper's findings checked against our numbers.

Rules every sentence follows: a margin inside the seed noise is called a tie, never a win;
a comparison that involves a model outside its regime's flops window says so in the same
sentence; differences are stated as "A ahead of B by x points" with x >= 0.
"""

from __future__ import annotations

from trials.compare.report.analysis import judge
from trials.progress import fmt_seconds
from trials.study.early_stop import label

TIE = "within seed noise"


def _name(method: str, pick: dict) -> str:
    return f"{method} ({pick['strategy']})" if pick.get("strategy") else method


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _where(v: dict) -> str:
    return f"{v['space'] + ' ' if v['space'] else ''}{v['regime']} ({v['level']})"


def _off(method: str, pick: dict) -> str:
    """'scaling (dWr) is off target (12.96MF, -19.0% vs the regime)', or ''."""
    if not pick.get("off_target"):
        return ""
    return (
        f"{_name(method, pick)} is off target ({pick['flops'] / 1e6:.3g}MF, "
        f"{pick['regime_miss'] * 100:+.1f}% vs the regime)"
    )


def _qualify(picks: dict, methods) -> str:
    """'; caveat: X is off target (...)' for the off-target ones among `methods`."""
    notes = [_off(m, picks[m]) for m in methods if m in picks and picks[m].get("off_target")]
    return (
        f"; caveat: {', '.join(notes)}, so this is not a like-for-like comparison" if notes else ""
    )


def _tied(v: dict, sigma: float | None) -> list[str]:
    """Methods whose score is within seed noise of the best (the best first)."""
    picks = v["picks"]
    ranked = list(picks)  # sorted by score
    best = picks[ranked[0]]
    out = [ranked[0]]
    for m in ranked[1:]:
        p = picks[m]
        _, judgement = judge(p["score"] - best["score"], sigma, best["score_n"], p["score_n"])
        if judgement in (TIE, "spread unknown"):
            out.append(m)
    return out


def _seconds(s: float) -> str:
    return fmt_seconds(s) if s == s else "?"


def headline(verdicts: list[dict], spread: dict) -> list[str]:
    """One line per regime: what to do there, from the data."""
    sigma = spread["std"]
    lines = []
    for v in verdicts:
        picks = v["picks"]
        tied = _tied(v, sigma)
        where = f"At {_where(v)}"
        if len(tied) == 1:
            first = tied[0]
            runner = next((m for m in picks if m != first), None)
            if runner is None:
                lines.append(f"{where}: {_name(first, picks[first])} (the only method trained).")
                continue
            z = f", z = {v['z']:.1f}" if v.get("z") is not None else ""
            biased = (
                "; its error is a best-of-N single-seed value, biased low"
                if first == "search" and picks[first]["score_n"] == 1
                else ""
            )
            lines.append(
                f"{where}: {_name(first, picks[first])} — ahead of "
                f"{_name(runner, picks[runner])} by {v['margin'] * 100:.2f} points "
                f"({v['judgement']}{z}){biased}{_qualify(picks, (first, runner))}."
            )
            continue
        names = " or ".join(_name(m, picks[m]) for m in tied)
        why = "a tie within seed noise" if sigma else "seed spread unknown, so no winner"
        on = [m for m in tied if not picks[m].get("off_target")]
        if on:
            cheap = min(on, key=lambda m: picks[m]["cost"])
            others = ", ".join(f"{m} {_seconds(picks[m]['cost'])}" for m in on if m != cheap)
            cost = f" (vs {others})" if others else ""
            tail = (
                f"the cheapest on-target option is {_name(cheap, picks[cheap])}: "
                f"{_seconds(picks[cheap]['cost'])} of training to obtain{cost}"
            )
        else:
            tail = "every tied option is off target"
        lines.append(f"{where}: {names} — {why} here; {tail}{_qualify(picks, tied)}.")
    return lines


def verdict_sentences(analysis: dict) -> list[str]:
    """Per regime: the ranking, with ties called ties and off-target models named."""
    out = []
    for v in analysis["verdict"]:
        picks = v["picks"]
        first = next(iter(picks))
        win = f"{_name(first, picks[first])} {_pct(picks[first]['score'])}"
        if v["runner_up"] is None:
            s = f"{_where(v)}: {win}, the only method"
        else:
            run = picks[v["runner_up"]]
            other = f"{_name(v['runner_up'], run)} {_pct(run['score'])}"
            z = f", z = {v['z']:.1f}" if v["z"] is not None else ""
            if v["judgement"] == TIE:
                s = f"{_where(v)}: {win} and {other} tie within seed noise ({v['margin'] * 100:.2f} points{z})"
            elif v["judgement"] == "spread unknown":
                s = f"{_where(v)}: {win} vs {other}: seed spread unknown, no winner can be called"
            else:
                verb = "wins" if v["judgement"] == "clear" else "leads (marginal, not established)"
                s = (
                    f"{_where(v)}: {_name(first, picks[first])} {verb} with error "
                    f"{_pct(picks[first]['score'])}, {v['margin'] * 100:.2f} points ahead of "
                    f"{_name(v['runner_up'], run)} ({v['judgement']}{z})"
                )
            s += _qualify(picks, (first, v["runner_up"]))
        if first == "search" and v["winner_n"] == 1:
            s += ". The searched error is a best-of-N single-seed value, biased low"
        out.append(s + ".")
    return out


def _versus(v: dict, a: str, b: str, sigma: float | None) -> tuple[str, str]:
    """('A ahead of B by x points (judgement, z; seed spread)', agreement with the paper,
    which has `a` ahead)."""
    pa, pb = v["picks"][a], v["picks"][b]
    d = pb["score"] - pa["score"]
    z, judgement = judge(abs(d), sigma, pa["score_n"], pb["score_n"])
    lead, trail = (a, b) if d >= 0 else (b, a)
    noise = f"{sigma * 100:.2f}%" if sigma else "unknown"
    zs = f", z = {z:.1f}" if z is not None else ""
    if judgement == "spread unknown":
        agree = "inconclusive"
        text = f"{lead} ahead of {trail} by {abs(d) * 100:.2f} points (not judged: {judgement})"
    elif judgement == TIE:
        agree = "inconclusive"
        text = f"{a} and {b} tie ({abs(d) * 100:.2f} points apart, {judgement}{zs})"
    else:
        agree = "agrees" if d > 0 else "disagrees"
        text = f"{lead} ahead of {trail} by {abs(d) * 100:.2f} points ({judgement}{zs})"
    return f"{text}; seed spread {noise}", agree


def paper_agreement(verdicts: list[dict], spread: dict) -> list[str]:
    """Check the paper's three §6.4 findings against the data; one sentence each."""
    sigma = spread["std"]
    lines = []
    for v in verdicts:
        picks = v["picks"]
        where = _where(v)
        for level, a, b, paper in (
            ("intermediate", "search", "scaling", "search ahead by 0.1-0.6"),
            ("top", "hybrid", "scaling", "hybrid ahead by 0.3"),
        ):
            if v["level"] == level and a in picks and b in picks:
                text, agree = _versus(v, a, b, sigma)
                lines.append(f"{where}: {text}: {agree} (paper: {paper}){_qualify(picks, (a, b))}.")
        if {"w", "dwr", "dWr"} <= set(v["strategies"]):
            lines.append(_fast_scaling(where, v["strategies"], sigma))
    return lines


def _fast_scaling(where: str, st: dict, sigma: float | None) -> str:
    de = (st["dWr"]["score"] - st["dwr"]["score"]) * 100
    tw, tdwr, tfast = (st[s]["runtime"] for s in ("w", "dwr", "dWr"))
    if sigma is None:
        acc = "noise unknown"
    elif abs(de) <= 2 * sigma * 100:
        acc = "within 2σ: agrees (paper: about as accurate)"
    else:
        better = "more" if de < 0 else "less"
        acc = f"outside 2σ, dWr {better} accurate: disagrees (paper: about as accurate)"
    faster = abs(tfast - tw) < abs(tdwr - tw)
    off = [f"scaling ({s})" for s in ("w", "dwr", "dWr") if st[s].get("off_target")]
    caveat = f"; caveat: {', '.join(off)} off target" if off else ""
    return (
        f"{where}: dWr − dwr error {de:+.2f} points ({acc}); epoch time w {tw:.3g}s, "
        f"dWr {tfast:.3g}s, dwr {tdwr:.3g}s "
        f"({'dWr nearer w: agrees' if faster else 'dWr not nearer w: disagrees'}){caveat}."
    )


def stopped_early(results) -> list[str]:
    """'3 candidates stopped early by ASHA; ...': what an early-stopping scheduler stopped
    (their errors are at the epoch they stopped, so they are left out of every ranking)."""
    if "status" not in results:
        return []
    stopped = results[results["status"] == "stopped"]
    if stopped.empty:
        return []
    if "stopped_by" not in stopped:
        stopped = stopped.assign(stopped_by="?")
    counts = stopped["stopped_by"].fillna("?").astype(str).value_counts()
    who = "candidate" if len(stopped) == 1 else "candidates"
    if len(counts) == 1:
        how = f"by {label(counts.index[0])}"
    else:
        how = "(" + ", ".join(f"{n} by {label(name)}" for name, n in counts.items()) + ")"
    return [
        f"{len(stopped)} {who} stopped early {how}; their errors are validation errors at "
        "the epoch they were stopped, not fully "
        "trained errors, and take no part in the ranking"
    ]
