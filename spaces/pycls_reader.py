"""Reading a pycls config back into a spec (`spec_from_pycls`), so the CLI can count a pycls
YAML. pycls defaults fill omitted keys; what fastscale cannot represent is one ExportError
naming the key and the allowed values. Pure Python: no torch.
"""

from __future__ import annotations

from spaces.blocks import BLOCKS, STEMS
from spaces.errors import FastscaleError
from spaces.pycls_format import PYCLS_DEFAULTS, PYCLS_RESNET_DEPTHS, STEM_TYPE, ExportError
from spaces.resnet import WIDTHS, ResNetSpec
from spaces.specs import EfficientNetSpec, RegNetSpec, StageSpec


def _section(cfg: dict, name: str) -> dict:
    given = cfg.get(name) or {}
    if not isinstance(given, dict):
        raise ExportError(
            f"pycls config section {name} must be a mapping, got {type(given).__name__}"
        )
    return {**PYCLS_DEFAULTS.get(name, {}), **given}


def _require(section: dict, name: str, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if not section.get(k) and section.get(k) != 0]
    if missing:
        raise ExportError(f"pycls config lacks {', '.join(f'{name}.{k}' for k in missing)}")


def _block(block_type: str, se_on: bool, activation: str, where: str, stem="simple") -> str:
    """The block of a pycls BLOCK_TYPE + activation. X, Y and ResNet's R share pycls's
    res_bottleneck_block: SE_ON tells X from Y, a ResNet stem tells R (which has no pycls SE)."""
    act = str(activation).lower().replace("swish", "silu")
    found = [
        b
        for b in BLOCKS.values()
        if b.pycls == str(block_type) and b.activation == act and (b.pycls_se or not se_on)
    ]
    if not found:
        allowed = sorted({f"{b.pycls} with {b.activation}" for b in BLOCKS.values() if b.pycls})
        raise ExportError(
            f"{where}.BLOCK_TYPE {block_type} with MODEL.ACTIVATION_FUN {activation} is not a "
            f"fastscale block; allowed: {', '.join(allowed)}"
        )
    found.sort(key=lambda b: (b.stem != stem, bool(b.se_ratio) != bool(se_on)))
    return found[0].name


def _stem(section: dict, where: str) -> None:
    if section.get("STEM_TYPE", STEM_TYPE) != STEM_TYPE:
        raise ExportError(
            f"{where}.STEM_TYPE {section['STEM_TYPE']} is not supported; allowed: {STEM_TYPE}"
        )


def spec_from_pycls(cfg: dict):
    """A spec from a pycls config mapping (yaml.safe_load of a pycls YAML); pycls defaults
    fill omitted keys. Raises ExportError for models fastscale cannot represent."""
    if not isinstance(cfg, dict):
        raise ExportError(f"a pycls config must be a mapping, got {type(cfg).__name__}")
    model = _section(cfg, "MODEL")
    model_type = str(model.get("TYPE", "")).lower()
    common = {
        "resolution": int(_section(cfg, "TRAIN")["IM_SIZE"]),
        "num_classes": int(model["NUM_CLASSES"]),
    }
    act = model["ACTIVATION_FUN"]
    try:
        if model_type == "regnet":
            return _regnet_from_pycls(_section(cfg, "REGNET"), act, common)
        if model_type == "anynet":
            return _anynet_from_pycls(_section(cfg, "ANYNET"), act, common)
        if model_type == "resnet":
            return _resnet_from_pycls(cfg, model, act, common)
        if model_type == "effnet":
            return _effnet_from_pycls(cfg, common)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FastscaleError):
            raise
        raise ExportError(f"invalid pycls {model_type} config: {exc}") from None
    raise ExportError(
        f"pycls MODEL.TYPE {model.get('TYPE')!r} is not supported; allowed: regnet, anynet, "
        "effnet, resnet"
    )


def _network_fields(section: dict, common: dict) -> dict:
    """SE, stem and head widths of a REGNET or ANYNET section (SE_R counts only with SE_ON),
    with the resolution and classes every model type shares."""
    return {
        "se_ratio": float(section["SE_R"]) if section["SE_ON"] else 0.0,
        "stem_width": int(section["STEM_W"]),
        "head_width": int(section["HEAD_W"]),
        **common,
    }


def _effnet_from_pycls(cfg: dict, common: dict) -> EfficientNetSpec:
    # pycls EfficientNets use SiLU (older pycls had no ACTIVATION_FUN key: swish always)
    given = str((cfg.get("MODEL") or {}).get("ACTIVATION_FUN", "silu")).lower()
    if given not in ("silu", "swish"):
        raise ExportError(
            f"MODEL.ACTIVATION_FUN {given} with effnet is not supported; allowed: silu"
        )
    e = _section(cfg, "EN")
    _require(e, "EN", ("DEPTHS", "WIDTHS", "EXP_RATIOS", "KERNELS", "STRIDES"))
    return EfficientNetSpec(
        depths=tuple(e["DEPTHS"]),
        widths=tuple(e["WIDTHS"]),
        strides=tuple(e["STRIDES"]),
        kernels=tuple(e["KERNELS"]),
        expansions=tuple(e["EXP_RATIOS"]),
        stem_width=int(e["STEM_W"]),
        head_width=int(e["HEAD_W"]),
        se_ratio=float(e["SE_R"]),
        **common,
    )


def _regnet_from_pycls(r: dict, act, common: dict) -> RegNetSpec:
    _stem(r, "REGNET")
    if int(r["STRIDE"]) != 2:
        raise ExportError(f"REGNET.STRIDE {r['STRIDE']} is not supported; allowed: 2")
    return RegNetSpec(
        block=_block(r["BLOCK_TYPE"], r["SE_ON"], act, "REGNET"),
        depth=int(r["DEPTH"]),
        w0=int(r["W0"]),
        wa=float(r["WA"]),
        wm=float(r["WM"]),
        group_width=int(r["GROUP_W"]),
        bottleneck=float(r["BOT_MUL"]),
        **_network_fields(r, common),
    )


def _anynet_from_pycls(a: dict, act, common: dict) -> StageSpec:
    by_pycls = {st.pycls: name for name, st in STEMS.items() if st.pycls}
    if a["STEM_TYPE"] not in by_pycls:
        raise ExportError(
            f"ANYNET.STEM_TYPE {a['STEM_TYPE']} is not supported; allowed: {', '.join(by_pycls)}"
        )
    stem = by_pycls[a["STEM_TYPE"]]
    _require(a, "ANYNET", ("DEPTHS", "WIDTHS", "STRIDES", "BOT_MULS", "GROUP_WS"))
    return StageSpec(
        block=_block(a["BLOCK_TYPE"], a["SE_ON"], act, "ANYNET", stem),
        depths=tuple(a["DEPTHS"]),
        widths=tuple(a["WIDTHS"]),
        group_widths=tuple(a["GROUP_WS"]),
        bottlenecks=tuple(a["BOT_MULS"]),
        strides=tuple(a["STRIDES"]),
        **_network_fields(a, common),
        stem=stem,
    )


def _resnet_from_pycls(cfg: dict, model: dict, act, common: dict):
    r = _section(cfg, "RESNET")
    depth = int(model.get("DEPTH", 0))
    if depth not in PYCLS_RESNET_DEPTHS:
        raise ExportError(
            f"pycls ResNet MODEL.DEPTH {depth} is not supported; allowed: "
            f"{', '.join(map(str, PYCLS_RESNET_DEPTHS))}"
        )
    if r["TRANS_FUN"] != "bottleneck_transform" or r["STRIDE_1X1"] or act != "relu":
        raise ExportError(
            f"pycls ResNet with RESNET.TRANS_FUN {r['TRANS_FUN']}, STRIDE_1X1 "
            f"{r['STRIDE_1X1']}, activation {act} is not supported; allowed: "
            "bottleneck_transform, STRIDE_1X1 False (the stride on the 3x3 conv), relu"
        )
    inner = int(r["NUM_GROUPS"]) * int(r["WIDTH_PER_GROUP"])
    return ResNetSpec(
        PYCLS_RESNET_DEPTHS[depth],
        bottleneck=inner / WIDTHS["R"][0],
        groups=int(r["NUM_GROUPS"]),
        **common,
    )
