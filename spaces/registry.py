"""Named models (REFERENCE §5): `list_models()` and `get_model(name)`, timm style."""

from __future__ import annotations

import difflib
import fnmatch

from spaces.specs import EfficientNetSpec, RegNetSpec, Spec, SpecError

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


def _build() -> dict[str, Spec]:
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
    return models


_MODELS = _build()
_LOWER = {name.lower(): name for name in _MODELS}


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a glob pattern (case-insensitive), in registry order."""
    return [n for n in _MODELS if fnmatch.fnmatch(n.lower(), pattern.lower())]


def is_model(name: str) -> bool:
    return name.lower() in _LOWER


def get_model(name: str, **overrides) -> Spec:
    """The registered spec, optionally with fields replaced (resolution, num_classes, ...)."""
    key = _LOWER.get(name.lower())
    if key is None:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SpecError(f"unknown model {name!r}{hint} (see `fastscale models`)")
    spec = _MODELS[key]
    return spec.replace(**overrides) if overrides else spec
