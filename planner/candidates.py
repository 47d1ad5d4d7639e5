"""Filter and rank given candidate networks by budgets (docs/planner.md, "Candidates"): the
budget checks of `plan` applied to a list of registered models, spec files or traced PyTorch
models instead of scaled copies of one base.

Each candidate is reduced to its operation counts (`spaces.op_walk` for specs, `spaces.trace`
for outside models, loaded only then), priced by a profile when a runtime or memory budget
needs one, and checked against every budget. Ranking, best first: candidates that fit every
budget, then most flops (within a budget, the larger network is the more accurate one: the
fast-scaling paper's premise), then name. A candidate that misses says by how much.
"""

from __future__ import annotations

from planner.budgets import PlanError, Relative, parse_budgets
from planner.plan import _check_profile_serves
from planner.profiles import load_profile
from spaces.io import resolve_labeled
from spaces.op_walk import op_counts
from spaces.outside import is_outside


def candidate_ops(refs, resolution=None, input_shape=None, kwargs=None) -> list[tuple]:
    """[(label, input size, Ops)] of registry names, spec files and outside models."""
    out = []
    for ref in refs:
        if is_outside(ref):
            from spaces import trace

            shape = trace.input_shape_of(input_shape, resolution)
            traced = trace.trace_model(ref, shape, kwargs)
            out.append((ref, "x".join(map(str, shape)), trace.priced_ops(traced)))
            continue
        for label, spec in resolve_labeled([ref])[0]:
            spec = spec.with_resolution(resolution) if resolution is not None else spec
            out.append((label, str(spec.resolution), op_counts(spec)))
    return out


_COLUMNS = {"max_acts": "acts", "max_params": "params", "max_runtime": "runtime",
            "max_memory": "memory_bytes"}  # fmt: skip


def _priced(label, size, ops, profile) -> dict:
    rec = {"model": label, "input": size, "flops": int(ops.flops), "params": int(ops.params)}
    rec.update(acts=int(ops.acts), runtime=None, memory_bytes=None)
    if profile is not None:
        priced = profile.price(ops)
        rec["runtime"] = float(priced["runtime"])
        memory = priced["memory_bytes"]
        rec["memory_bytes"] = None if memory is None else int(round(float(memory)))
    return rec


def rank_candidates(
    candidates, max_acts=None, max_params=None, max_runtime=None, max_memory=None, profile=None
) -> list[dict]:
    """One record per candidate (label, input, flops, params, acts, runtime, memory_bytes,
    fits, miss), ranked as the module docstring says. A relative budget ('1.5x') is a multiple
    of the smallest candidate's value."""
    budgets = parse_budgets(
        max_acts=max_acts, max_params=max_params, max_runtime=max_runtime, max_memory=max_memory
    )
    profile = load_profile(profile) if profile is not None else None
    _check_profile_serves(budgets, profile)
    if not candidates:
        raise PlanError("no candidate models given")
    records = [_priced(label, size, ops, profile) for label, size, ops in candidates]
    for rec in records:
        misses = {}
        for key, budget in budgets.items():
            value = rec[_COLUMNS[key]]
            if budget is None or value is None:
                continue
            if isinstance(budget, Relative):  # a multiple of the smallest candidate's value
                budget = budget.factor * min(r[_COLUMNS[key]] for r in records)
            if value > budget:
                misses[key] = value / budget - 1
        rec["fits"] = not misses
        rec["miss"] = ", ".join(f"{k.removeprefix('max_')} +{v:.1%}" for k, v in misses.items())
    records.sort(key=lambda r: (not r["fits"], -r["flops"], r["model"]))
    for rank, rec in enumerate(records, 1):
        rec["rank"] = rank
    return records
