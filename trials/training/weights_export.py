"""The network as a file other tools load: TorchScript (always) or ONNX (where installed).

The module is built from the spec (`spaces.build`), in eval mode, with random weights or the
weights of a `fastscale train --out DIR` checkpoint (the averaged weights when the run kept
them). TorchScript is traced on one input of the spec's shape; ONNX goes through
`torch.onnx.export`, which needs the `onnx` package (and `onnxscript` for torch's exporter):
`pip install onnx onnxscript`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

from spaces.errors import FastscaleError
from spaces.safe_write import check_target, open_for_write

FORMATS = ("torchscript", "onnx")


class WeightsExportError(FastscaleError):
    """Trained weights that cannot be exported as asked (checkpoint, format, output file)."""


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript"))


def _module(spec, checkpoint: str | None):
    import torch

    from spaces.build import build_model

    torch.manual_seed(0)
    model = build_model(spec)
    if checkpoint:
        try:
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise WeightsExportError(f"cannot read checkpoint {checkpoint!r}: {exc}") from None
        state = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise WeightsExportError(f"{checkpoint!r} is not a `fastscale train` checkpoint")
        try:
            model.load_state_dict(state)
        except RuntimeError:
            raise WeightsExportError(
                f"{checkpoint!r} holds weights of a different network; give the spec it was "
                "trained with (its resolution, --num-classes and input channels)"
            ) from None
    return model.eval()


def export_model(spec, fmt: str, out: str | Path, checkpoint: str | None = None) -> dict:
    """Write the network to `out`; return {format, out, bytes, input_shape}."""
    import torch

    if fmt not in FORMATS:
        raise WeightsExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx" and not onnx_available():
        raise WeightsExportError(
            "--format onnx needs the onnx and onnxscript packages, which are not installed "
            "here (pip install onnx onnxscript); --format torchscript needs nothing more"
        )
    model = _module(spec, checkpoint)
    shape = (1, spec.in_channels, spec.resolution, spec.resolution)
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))

    out = check_target(out)  # a device, FIFO, directory or symlink is refused before any work
    with torch.no_grad():
        if fmt == "torchscript":
            traced = torch.jit.trace(model, example)
            with open_for_write(out) as fh:
                torch.jit.save(traced, fh)
        else:  # the exporter writes the path itself (external-data files beside it if large)
            batch = torch.export.Dim("batch", min=1)
            try:
                with contextlib.redirect_stdout(sys.stderr):  # its progress lines, not --json's
                    torch.onnx.export(
                        model,
                        (example,),
                        str(out),
                        input_names=["image"],
                        output_names=["logits"],
                        dynamic_shapes=({0: batch},),  # any batch size
                    )
            except OSError as exc:
                raise WeightsExportError(f"cannot write {str(out)!r}: {exc.strerror}") from None
    return {"format": fmt, "out": str(out), "bytes": out.stat().st_size, "input_shape": shape}
