"""pycls configs (facebookresearch/pycls, `pycls/core/config.py` key names) to and from specs.

`pycls_yaml(spec)` writes a config that pycls's `train_net.py --cfg` accepts: a RegNet spec
becomes `MODEL.TYPE: regnet` (pycls regenerates the same stages from d, w0, wa, wm), a
stage-level spec `anynet`, an EfficientNet (or MB stage spec) `effnet`. pycls merges configs
with yacs, which rejects unknown keys and type changes, so only keys pycls defines are written
and floats stay floats. `spec_from_pycls(cfg)` reads such a config back, so the CLI can count
a pycls YAML. Pure Python + PyYAML: no torch.
"""

from __future__ import annotations

import yaml

from spaces.blocks import BLOCKS, STEMS
from spaces.complexity import complexity
from spaces.errors import FastscaleError
from spaces.specs import EfficientNetSpec, RegNetSpec, StageSpec
from spaces.units import format_quantity


class ExportError(FastscaleError):
    """A pycls config that fastscale cannot represent (or the reverse)."""


STEM_TYPE = "simple_stem_in"  # 3×3 stride-2 conv, BN, activation: our "simple" stem
# pycls defaults (pycls/core/config.py) for keys a config may omit.
PYCLS_DEFAULTS = {
    "MODEL": {"NUM_CLASSES": 10, "ACTIVATION_FUN": "relu"},
    "REGNET": {
        "STEM_TYPE": STEM_TYPE,
        "STEM_W": 32,
        "BLOCK_TYPE": "res_bottleneck_block",
        "STRIDE": 2,
        "SE_ON": False,
        "SE_R": 0.25,
        "DEPTH": 10,
        "W0": 32,
        "WA": 5.0,
        "WM": 2.5,
        "GROUP_W": 16,
        "BOT_MUL": 1.0,
        "HEAD_W": 0,
    },
    "ANYNET": {
        "STEM_TYPE": STEM_TYPE,
        "STEM_W": 32,
        "BLOCK_TYPE": "res_bottleneck_block",
        "HEAD_W": 0,
        "SE_ON": False,
        "SE_R": 0.25,
    },
    "EN": {"STEM_W": 32, "SE_R": 0.25, "HEAD_W": 1280},
    "RESNET": {
        "TRANS_FUN": "basic_transform",
        "NUM_GROUPS": 1,
        "WIDTH_PER_GROUP": 64,
        "STRIDE_1X1": True,
    },
    "TRAIN": {"IM_SIZE": 224},
}


class _Dumper(yaml.SafeDumper):
    """Block-style sections with flow-style lists, the layout of pycls's own configs."""


_Dumper.add_representer(
    list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def _num(x: float):
    """An integral float as int (EXP_RATIOS: [1, 6, ...], as pycls configs write them)."""
    return int(x) if float(x).is_integer() else float(x)


def pycls_test_size(resolution: int) -> int:
    """pycls's TEST.IM_SIZE: the resize before the centre crop of TRAIN.IM_SIZE (the network
    input), r / 0.875 rounded to an even size, as in pycls's configs (224→256, 300→342)."""
    return 2 * round(resolution / 0.875 / 2)


def _common(spec, model_type: str, block: str) -> dict:
    return {
        "MODEL": {
            "TYPE": model_type,
            "NUM_CLASSES": spec.num_classes,
            "ACTIVATION_FUN": BLOCKS[block].activation,
        }
    }


def _images(spec) -> dict:
    return {
        "TRAIN": {"IM_SIZE": spec.resolution},
        "TEST": {"IM_SIZE": pycls_test_size(spec.resolution)},
    }


def _se(section: dict, se_ratio: float) -> None:
    section["SE_ON"] = bool(se_ratio)
    if se_ratio:
        section["SE_R"] = float(se_ratio)


def _effnet(s: StageSpec) -> dict:
    return {
        "STEM_W": s.stem_width,
        "DEPTHS": list(s.depths),
        "WIDTHS": list(s.widths),
        "EXP_RATIOS": [_num(b) for b in s.bottlenecks],
        "KERNELS": list(s.kernels),
        "STRIDES": list(s.strides),
        "HEAD_W": s.head_width,
        "SE_R": float(s.se_ratio),
    }


# pycls's own ImageNet ResNets (MODEL.TYPE resnet): MODEL.DEPTH -> stage depths.
PYCLS_RESNET_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _pycls_resnet(spec) -> dict | None:
    """The MODEL.DEPTH and RESNET section when pycls's own ResNet builds `spec` (ResNet or
    ResNeXt at 50/101/152 layers, standard widths and stem), else None."""
    from spaces.resnet import WIDTHS

    depth = next((d for d, ds in PYCLS_RESNET_DEPTHS.items() if ds == spec.depths), None)
    standard = (
        spec.family == "resnet"
        and spec.kind.pycls == "res_bottleneck_block"  # pycls's ImageNet ResNet: bottlenecks
        and spec.widths == WIDTHS[spec.block]
        and (spec.stem, spec.shortcut, spec.stem_width, spec.head_width)
        == ("resnet", "projection", 64, 0)
        and not spec.se_ratio
    )
    if depth is None or not standard:
        return None
    inner = int(round(spec.widths[0] * spec.bottleneck))
    resnet = {
        "TRANS_FUN": "bottleneck_transform",
        "NUM_GROUPS": spec.groups,
        "WIDTH_PER_GROUP": inner // spec.groups,
        "STRIDE_1X1": False,  # the stride sits on the 3x3 conv (pycls's default is the 1x1)
    }
    return {"DEPTH": depth, "RESNET": resnet}


def _anynet_stem(s: StageSpec) -> str:
    """The pycls STEM_TYPE of a stage spec; ExportError for what pycls's AnyNet cannot build."""
    stem = STEMS[s.stem]
    if stem.pycls is None:
        allowed = ", ".join(n for n, st in STEMS.items() if st.pycls)
        raise ExportError(
            f"pycls has no {s.stem} stem ({stem.summary}); pycls can express the stems {allowed}"
        )
    if s.shortcut != s.kind.shortcuts[0]:
        raise ExportError(
            f"pycls has no {s.shortcut} shortcut; allowed: {s.kind.shortcuts[0]} (ResNet-D and "
            "ResNet-RS cannot be exported to pycls)"
        )
    if s.se_ratio and not s.kind.pycls_se:
        raise ExportError(
            f"{s.block} blocks put SE on the block output; pycls's SE_ON puts it after the 3x3 "
            "conv, so SE-ResNets cannot be exported to pycls"
        )
    return stem.pycls


def to_pycls_config(spec) -> dict:
    """The pycls config (nested dict of MODEL, REGNET/ANYNET/EN, TRAIN, TEST) of a spec."""
    if isinstance(spec, RegNetSpec):
        cfg = _common(spec, "regnet", spec.block)
        regnet = {
            "STEM_TYPE": STEM_TYPE,
            "STEM_W": spec.stem_width,
            "BLOCK_TYPE": BLOCKS[spec.block].pycls,
            "STRIDE": 2,
            "DEPTH": spec.depth,
            "W0": spec.w0,
            "WA": float(spec.wa),
            "WM": float(spec.wm),
            "GROUP_W": spec.group_width,
            "BOT_MUL": float(spec.bottleneck),
            "HEAD_W": spec.head_width,
        }
        _se(regnet, spec.se_ratio)
        cfg["REGNET"] = regnet
    elif spec.kind.depthwise:
        cfg = _common(spec, "effnet", spec.block)
        cfg["EN"] = _effnet(spec.stages())
    elif (resnet := _pycls_resnet(spec)) is not None:
        cfg = _common(spec, "resnet", spec.block)
        cfg["MODEL"]["DEPTH"] = resnet.pop("DEPTH")
        cfg.update(resnet)
    else:
        s = spec.stages()
        cfg = _common(spec, "anynet", s.block)
        anynet = {
            "STEM_TYPE": _anynet_stem(s),
            "STEM_W": s.stem_width,
            "BLOCK_TYPE": BLOCKS[s.block].pycls,
            "DEPTHS": list(s.depths),
            "WIDTHS": list(s.widths),
            "STRIDES": list(s.strides),
            "BOT_MULS": [float(b) for b in s.bottlenecks],
            "GROUP_WS": list(s.group_widths),
            "HEAD_W": s.head_width,
        }
        _se(anynet, s.se_ratio)
        cfg["ANYNET"] = anynet
    cfg.update(_images(spec))
    return cfg


def _caveats(spec) -> list[str]:
    s = spec.stages()
    notes = []
    if s.in_channels != 3:
        notes.append(
            f"in_channels={s.in_channels} cannot be expressed in pycls (its stems take 3 channels);"
            " pycls will build the stem for 3-channel input"
        )
    if s.kind.depthwise and not s.head_width:
        notes.append("head_width=0: pycls's EfficientNet always has a head conv (EN.HEAD_W)")
    if s.kind.depthwise and not s.se_ratio:
        notes.append("se_ratio=0: pycls's EfficientNet always has SE (EN.SE_R)")
    return notes


def pycls_yaml(spec) -> str:
    """The config as YAML, with a comment header giving its origin and exact complexity."""
    cx = complexity(spec)
    header = [
        "# pycls config generated by fastscale (train with: python tools/run_net.py --mode train --cfg FILE)",
        f"# {spec.family} spec, block {spec.block}: flops {format_quantity(cx.flops, 'F')} ({cx.flops}),"
        f" params {cx.params}, acts {cx.acts} at {spec.resolution} px",
        "# TRAIN.IM_SIZE is the network input; TEST.IM_SIZE is pycls's resize before the centre crop.",
        "# Add TRAIN.DATASET, TEST.DATASET, OPTIM.* and NUM_GPUS for your run.",
    ]
    header += [f"# NOTE: {note}" for note in _caveats(spec)]
    body = yaml.dump(
        to_pycls_config(spec), Dumper=_Dumper, sort_keys=False, default_flow_style=False
    )
    return "\n".join(header) + "\n" + body


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
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FastscaleError):
            raise
        raise ExportError(f"invalid pycls {model_type} config: {exc}") from None
    raise ExportError(
        f"pycls MODEL.TYPE {model.get('TYPE')!r} is not supported; allowed: regnet, anynet, "
        "effnet, resnet"
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
        se_ratio=float(r["SE_R"]) if r["SE_ON"] else 0.0,
        stem_width=int(r["STEM_W"]),
        head_width=int(r["HEAD_W"]),
        **common,
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
        se_ratio=float(a["SE_R"]) if a["SE_ON"] else 0.0,
        stem_width=int(a["STEM_W"]),
        head_width=int(a["HEAD_W"]),
        stem=stem,
        **common,
    )


def _resnet_from_pycls(cfg: dict, model: dict, act, common: dict):
    from spaces.resnet import WIDTHS, ResNetSpec

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
