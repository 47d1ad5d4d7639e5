"""pycls configs (facebookresearch/pycls, `pycls/core/config.py` key names) written from specs.

`pycls_yaml(spec)` writes a config that pycls's `train_net.py --cfg` accepts: a RegNet spec
becomes `MODEL.TYPE: regnet` (pycls regenerates the same stages from d, w0, wa, wm), a
stage-level spec `anynet`, an EfficientNet (or MB stage spec) `effnet`. pycls merges configs
with yacs, which rejects unknown keys and type changes, so only keys pycls defines are written
and floats stay floats. `spaces.pycls_reader.spec_from_pycls(cfg)` reads such a config back,
so the CLI can count a pycls YAML; the vocabulary both directions share (and their error,
`ExportError`) is `spaces.pycls_format`. Pure Python + PyYAML: no torch.
"""

from __future__ import annotations

import yaml

from spaces.blocks import BLOCKS, STEMS
from spaces.complexity import complexity
from spaces.pycls_format import PYCLS_RESNET_DEPTHS, STEM_TYPE, ExportError, pycls_test_size
from spaces.resnet import WIDTHS
from spaces.specs import RegNetSpec, StageSpec
from spaces.units import format_quantity


class _Dumper(yaml.SafeDumper):
    """Block-style sections with flow-style lists, the layout of pycls's own configs."""


_Dumper.add_representer(
    list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def _num(x: float):
    """An integral float as int (EXP_RATIOS: [1, 6, ...], as pycls configs write them)."""
    return int(x) if float(x).is_integer() else float(x)


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


def _effnet_section(s: StageSpec) -> dict:
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


def _pycls_resnet(spec) -> dict | None:
    """The MODEL.DEPTH and RESNET section when pycls's own ResNet builds `spec` (ResNet or
    ResNeXt at 50/101/152 layers, standard widths and stem), else None."""
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
        cfg["EN"] = _effnet_section(spec.stages())
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
