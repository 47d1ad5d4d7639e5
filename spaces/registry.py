"""Named models (RegNet, EfficientNet, ResNet families): `list_models()` and `get_model(name)`,
timm style. A family module contributes its entries (e.g. `spaces.resnet.MODELS`).

Every family module is imported here explicitly: that registers its spec class
(`spaces.families.register_family`) and gives `Spec`, the union of every family's spec.
`import spaces` imports this module, so every family is registered once `spaces` is."""

from __future__ import annotations

import difflib
import fnmatch
import functools

from spaces import resnet
from spaces.complexity import complexity
from spaces.specs import EfficientNetSpec, RegNetSpec, SpecError, StageSpec

Spec = RegNetSpec | StageSpec | EfficientNetSpec | resnet.ResNetSpec

# name: (d, w0, wa, wm, g) of the reference model zoo
_REGNETX = {
    "200MF": (13, 24, 36.44, 2.49, 8),
    "400MF": (22, 24, 24.48, 2.54, 16),
    "600MF": (16, 48, 36.97, 2.24, 24),
    "800MF": (16, 56, 35.73, 2.28, 16),
    "1.6GF": (18, 80, 34.01, 2.25, 24),
    "3.2GF": (25, 88, 26.31, 2.25, 48),
    "4.0GF": (23, 96, 38.65, 2.43, 40),
    "6.4GF": (17, 184, 60.83, 2.07, 56),
    "8.0GF": (23, 80, 49.56, 2.88, 120),
    "12GF": (19, 168, 73.36, 2.37, 112),
    "16GF": (22, 216, 55.59, 2.1, 128),
    "32GF": (23, 320, 69.86, 2.0, 168),
}
_REGNETY = {
    "200MF": (13, 24, 36.44, 2.49, 8),
    "400MF": (16, 48, 27.89, 2.09, 8),
    "600MF": (15, 48, 32.54, 2.32, 16),
    "800MF": (14, 56, 38.84, 2.4, 16),
    "1.6GF": (27, 48, 20.71, 2.65, 24),
    "3.2GF": (21, 80, 42.63, 2.66, 24),
    "4.0GF": (22, 96, 31.41, 2.24, 64),
    "6.4GF": (25, 112, 33.22, 2.27, 72),
    "8.0GF": (17, 192, 76.82, 2.19, 56),
    "12GF": (19, 168, 73.36, 2.37, 112),
    "16GF": (18, 200, 106.23, 2.48, 112),
    "32GF": (20, 232, 115.89, 2.53, 232),
}
# name: (resolution, stem, depths, widths, head)
_EFFICIENTNET = {
    "B0": (224, 32, (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 1280),
    "B1": (240, 32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 40, 80, 112, 192, 320), 1280),
    "B2": (260, 32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 48, 88, 120, 208, 352), 1408),
    "B3": (300, 40, (2, 3, 3, 5, 5, 6, 2), (24, 32, 48, 96, 136, 232, 384), 1536),
    "B4": (380, 48, (2, 4, 4, 6, 6, 8, 2), (24, 32, 56, 112, 160, 272, 448), 1792),
    "B5": (456, 48, (3, 5, 5, 7, 7, 9, 3), (24, 40, 64, 128, 176, 304, 512), 2048),
}


# torchvision's RegNets that are the pycls architecture (its X-400MF, Y-800MF and Y-8GF are not:
# their published parameter counts differ from pycls's).
_TORCHVISION_REGNETS = {
    "RegNetX-800MF", "RegNetX-1.6GF", "RegNetX-3.2GF", "RegNetX-8.0GF", "RegNetX-16GF",
    "RegNetX-32GF", "RegNetY-400MF", "RegNetY-1.6GF", "RegNetY-3.2GF", "RegNetY-16GF",
    "RegNetY-32GF",
}  # fmt: skip


def _size_code(size: str) -> str:
    """'200MF' -> '002', '1.6GF' -> '016', '32GF' -> '320': flops in units of 100MF (timm)."""
    mf = float(size[:-2]) * (1000 if size.endswith("GF") else 1)
    return f"{round(mf / 100):03d}"


def _external_names() -> dict[str, dict[str, str]]:
    """{registry name: {"timm": name, "torchvision": name}} where the architecture is the same."""
    names: dict[str, dict[str, str]] = {}
    for block, table in (("X", _REGNETX), ("Y", _REGNETY)):
        for size in table:
            name = f"RegNet{block}-{size}"
            names[name] = {"timm": f"regnet{block.lower()}_{_size_code(size)}"}
            if name in _TORCHVISION_REGNETS:
                tv = size.replace(".0", "").replace(".", "_").lower()
                names[name]["torchvision"] = f"regnet_{block.lower()}_{tv}"
    names["RegNetZ-500MF"] = {"timm": "regnetz_005"}
    names["RegNetZ-4GF"] = {"timm": "regnetz_040"}
    for size in _EFFICIENTNET:
        code = f"efficientnet_{size.lower()}"
        names[f"EfficientNet-{size}"] = {"timm": code, "torchvision": code}
    for library, table in (("timm", resnet.TIMM_NAMES), ("torchvision", resnet.TORCHVISION_NAMES)):
        for name, external in table.items():
            names.setdefault(name, {})[library] = external
    return names


@functools.cache
def _models() -> dict[str, Spec]:
    """name -> spec of every registered model, in registry order. Built (and so validated)
    on first use rather than at import: `import spaces` need not construct some sixty specs
    (a few milliseconds) that a command may never look up."""
    models: dict[str, Spec] = {}
    for block, table in (("X", _REGNETX), ("Y", _REGNETY)):
        for size, (d, w0, wa, wm, g) in table.items():
            models[f"RegNet{block}-{size}"] = RegNetSpec(block, d, w0, wa, wm, g)
    models["RegNetZ-500MF"] = RegNetSpec("Z", 21, 16, 10.7, 2.51, 4, head_width=1024)
    models["RegNetZ-4GF"] = RegNetSpec("Z", 28, 48, 14.5, 2.226, 8, resolution=256)
    for size, (res, stem, depths, widths, head) in _EFFICIENTNET.items():
        models[f"EfficientNet-{size}"] = EfficientNetSpec(
            depths=depths, widths=widths, resolution=res, stem_width=stem, head_width=head
        )
    models.update(resnet.MODELS)
    return models


@functools.cache
def _lower() -> dict[str, str]:
    return {name.lower(): name for name in _models()}


EXTERNAL = _external_names()
LIBRARIES = ("timm", "torchvision")
# "timm:regnety_040" -> "RegNetY-4.0GF"
_BY_EXTERNAL = {
    f"{lib}:{ext}": name for name, libs in EXTERNAL.items() for lib, ext in libs.items()
}


def external_name(name: str, library: str) -> str | None:
    """The timm / torchvision name of a registered model, or None where it has none."""
    return EXTERNAL.get(name, {}).get(library)


def _canonical(name: str) -> str | None:
    """The registry name of a registry name (any case) or a 'timm:' / 'torchvision:' name."""
    if ":" in name:
        return _BY_EXTERNAL.get(name.strip())
    return _lower().get(name.lower())


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a glob pattern (case-insensitive), in registry order."""
    return [n for n in _models() if fnmatch.fnmatch(n.lower(), pattern.lower())]


def is_model(name: str) -> bool:
    return _canonical(name) is not None


def external_names(library: str) -> list[str]:
    """The timm or torchvision names the registry maps to its own models, sorted."""
    return sorted(e.partition(":")[2] for e in _BY_EXTERNAL if e.startswith(library + ":"))


def get_model(name: str, **overrides) -> Spec:
    """The registered spec, optionally with fields replaced (resolution, num_classes, ...)."""
    key = _canonical(name)
    library, _, ext = name.partition(":")
    if key is None and ext and library.isidentifier():  # 'timm:x', not a path like 'a/b:c.json'
        if library not in LIBRARIES:
            raise SpecError(
                f"unknown model library {library!r} in {name!r}; allowed: {', '.join(LIBRARIES)}"
            )
        known = [f"{library}:{n}" for n in external_names(library)]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SpecError(
            f"{name!r} is not a {library} model that fastscale models{hint} (known: "
            f"{', '.join(k.partition(':')[2] for k in known)})"
        )
    if key is None:
        close = difflib.get_close_matches(name, list(_models()), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SpecError(f"unknown model {name!r}{hint} (see `fastscale models`)")
    spec = _models()[key]
    return spec.replace(**overrides) if overrides else spec


def zoo_markdown(names: list[str] | None = None) -> str:
    """The model zoo as a Markdown table (pycls style); docs/zoo.md is generated from it."""
    lines = [
        "# Model zoo",
        "",
        "Generated by `fastscale models --markdown > docs/zoo.md`; a test keeps it current.",
        "flops are multiply-adds; acts are output elements of conv/linear/max-pool layers"
        " (docs/models.md).",
        "",
        "| model | block | res | depths | widths | group widths | flops | params | acts | timm "
        "| torchvision |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names or list_models():
        spec = get_model(name)
        s, cx = spec.stages(), complexity(spec)
        row = [
            name,
            s.block,
            s.resolution,
            *(" ".join(map(str, v)) for v in (s.depths, s.widths, s.group_widths)),
        ]
        row += [f"{cx.flops:,}", f"{cx.params:,}", f"{cx.acts:,}"]
        row += [external_name(name, lib) or "-" for lib in LIBRARIES]
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
