"""timm and torchvision: the name of the same network there, or the timm constructor call that
builds it (`fastscale export --format timm`). Pure Python: timm is not imported (it is not a
dependency; its CUDA-built torchvision does not load with the CPU torch).

Registered names map by the registry (`spaces.registry.EXTERNAL`); any other spec is written as
timm constructor arguments when timm's RegNet or ResNet can express it, else an InteropError
says why.
"""

from __future__ import annotations

from spaces.blocks import BLOCKS
from spaces.errors import FastscaleError
from spaces.registry import external_name, get_model, list_models
from spaces.specs import RegNetSpec


class InteropError(FastscaleError):
    """A network that timm cannot express."""


def registered_twin(spec) -> str | None:
    """The registered model with the same architecture (resolution aside), if any."""
    for name in list_models():
        reg = get_model(name)
        if (
            type(reg) is type(spec)
            and spec.replace(
                resolution=reg.resolution, num_classes=reg.num_classes, in_channels=reg.in_channels
            )
            == reg
        ):
            return name
    return None


def _call(func: str, args: dict) -> str:
    inner = ", ".join(
        f"{k}={v!r}" if not isinstance(v, Raw) else f"{k}={v}" for k, v in args.items()
    )
    return f"{func}({inner})"


class Raw(str):
    """A Python expression written as is (not repr-quoted)."""


def _regnet_args(spec: RegNetSpec) -> str:
    cfg = {
        "depth": spec.depth,
        "w0": spec.w0,
        "wa": spec.wa,
        "wm": spec.wm,
        "group_size": spec.group_width,
        "bottle_ratio": spec.bottleneck,
        "se_ratio": spec.se_ratio,
        "stem_width": spec.stem_width,
        "num_features": spec.head_width,
        "act_layer": spec.activation,
        **spec.kind.timm_args,
    }
    return _call(
        "timm.models.regnet.RegNet",
        {
            "cfg": Raw(_call("timm.models.regnet.RegNetCfg", cfg)),
            "num_classes": spec.num_classes,
            "in_chans": spec.in_channels,
        },
    )


def _resnet_args(spec) -> str:
    """timm's ResNet(block, layers, channels, cardinality, base_width, stem, ...) of a ResNet
    stage list; InteropError where timm's constructor has no such knob."""
    s = spec.stages()
    kind = s.kind
    expansion = kind.timm_args["expansion"]
    why = []
    if len(s.depths) != 4:  # timm's forward_features calls layer1 .. layer4 by name: a
        # fifth stage is built but never run, fewer fail in the forward pass
        why.append(f"{len(s.depths)} stages (timm's ResNet runs exactly four)")
    if s.strides != (1,) + (2,) * (len(s.depths) - 1):
        why.append(f"strides {list(s.strides)} (timm: 1 then 2)")
    if s.head_width or s.shortcut not in ("projection", "avgpool"):
        why.append("a head conv" if s.head_width else f"shortcut {s.shortcut}")
    if any(w % expansion for w in s.widths):
        why.append(f"widths not divisible by the block expansion {expansion}")
    planes = [w // expansion for w in s.widths]
    inner = [int(round(w * b)) for w, b in zip(s.widths, s.bottlenecks, strict=True)]
    cardinality = {i // g for i, g in zip(inner, s.group_widths, strict=True)}
    if len(cardinality) != 1:
        why.append(f"a different cardinality per stage ({sorted(cardinality)})")
    groups = min(cardinality)
    base_width = 64 * inner[0] // (groups * planes[0])
    if any(p * base_width // 64 * groups != i for p, i in zip(planes, inner, strict=True)):
        why.append("inner widths that no single base_width gives")
    deep = s.stem in ("deep", "deep-conv")
    if s.stem != "simple" and not deep and s.stem_width != 64:
        why.append("a 7x7 stem that is not 64 wide")
    if s.stem == "simple":
        why.append("the simple 3x3 stem")
    if s.se_ratio and any(round(w * s.se_ratio) % 8 for w in s.widths):
        why.append("SE widths that are not multiples of 8 (timm rounds them to 8)")
    if why:
        raise InteropError(
            f"timm's ResNet cannot express {', '.join(why)}; use --format pycls or json"
        )
    args = {
        "block": Raw(f"timm.models.resnet.{kind.timm_args['block']}"),
        "layers": list(s.depths),
        "channels": planes,
        "cardinality": groups,
        "base_width": base_width,
        "stem_type": "deep" if deep else "",
        "stem_width": s.stem_width // 2 if deep else 64,
        "avg_down": s.shortcut == "avgpool",
        "replace_stem_pool": s.stem == "deep-conv",
        "num_classes": s.num_classes,
        "in_chans": s.in_channels,
    }
    if s.se_ratio:
        se = f"functools.partial(timm.layers.get_attn('se'), rd_ratio={s.se_ratio!r})"
        args["block_args"] = Raw(f"dict(attn_layer={se})")
    return _call("timm.models.resnet.ResNet", args)


def timm_code(spec) -> str:
    """Python that builds `spec` in timm: `timm.create_model(name)` for a registered twin,
    else the constructor call. Raises InteropError when timm cannot express the network."""
    twin = registered_twin(spec)
    name = external_name(twin, "timm") if twin else None
    res = f"# input resolution {spec.resolution} px (timm sets it in the data pipeline)"
    if name:
        call = _call(
            "timm.create_model",
            {"model_name": name, "num_classes": spec.num_classes, "in_chans": spec.in_channels},
        )
        return f"import timm\n\nmodel = {call}  {res}\n"
    if isinstance(spec, RegNetSpec):
        return f"import timm\n\nmodel = {_regnet_args(spec)}\n{res}\n"
    if "expansion" in spec.kind.timm_args:
        code = _resnet_args(spec)
        imports = "import functools\n\nimport timm\n" if "functools" in code else "import timm\n"
        return f"{imports}\nmodel = {code}\n{res}\n"
    resnets = ", ".join(b.name for b in BLOCKS.values() if "expansion" in b.timm_args)
    raise InteropError(
        f"timm cannot express this {spec.family} {spec.block} network: timm builds RegNets from "
        "(depth, w0, wa, wm) and EfficientNets from B0 multipliers, not from stage lists; "
        f"allowed: a registered model, a RegNet spec, or a stage list of {resnets} blocks; "
        "use --format pycls or json"
    )
