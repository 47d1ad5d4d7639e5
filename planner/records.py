"""The record of one scaled network, as `fastscale scale` prints it (table or --json) and
writes it: the spec's fields, its exact complexity and how it was scaled.

One place for what a scaled network's record holds, so the CLI only parses and prints.
"""

from __future__ import annotations

from pathlib import Path

from planner.scale import realised_factors, scale_spec
from planner.solve import solve
from spaces.complexity import complexity
from spaces.units import format_quantity

SOLUTION_KEYS = ("factor", "s", "target", "on_target", "miss", "tolerance")
FACTOR_KEYS = ("depth_factor", "width_factor", "group_width_factor", "resolution_factor")


def spec_label(ref: str) -> str:
    """A short name for a spec reference: a file's stem, or the registry name as given."""
    return Path(ref).stem if Path(ref).suffix in (".json", ".yaml", ".yml") else ref


def network_record(name: str, spec, extra: dict) -> dict:
    """Spec fields + integer complexity + `extra`: the object `scale --json` prints."""
    return {"name": name, **spec.to_dict(), **complexity(spec).as_dict(), **extra}


def scale_record(base, base_ref: str, strategy, *, factor=None, target=None, tolerance=0.01,
                 finetune: bool = True) -> tuple[object, dict]:  # fmt: skip
    """Scale `base` by the flop factor `factor`, or solve for `target` flops within
    ±tolerance; return the scaled spec and its record (how it was scaled, its counts)."""
    base_flops = complexity(base).flops
    name = f"{spec_label(base_ref)}-{strategy.name.replace('=', '')}"
    if factor is not None:
        scaled = scale_spec(base, strategy, factor)
        f = realised_factors(base, scaled)
        extra = {"factor": complexity(scaled).flops / base_flops, "s": float(factor)}
        extra.update(depth_factor=f.depth, width_factor=f.width, resolution_factor=f.resolution)
        extra.update(group_width_factor=f.group_width, scaled_down=factor < 1)
        name += f"-x{factor:g}"
    else:
        sol = solve(base, strategy, target, tolerance, finetune=finetune)
        scaled = sol.spec
        info = sol.to_dict()
        extra = {k: info[k] for k in SOLUTION_KEYS + FACTOR_KEYS}
        extra.update(finetuned=sol.finetuned, below=sol.below, above=sol.above)
        extra["scaled_down"] = sol.scaled_down
        name += f"-{format_quantity(target, 'F')}"
    extra = {"strategy": strategy.name, "alpha": strategy.alpha, "base": base_ref, **extra}
    return scaled, network_record(name, scaled, extra)
