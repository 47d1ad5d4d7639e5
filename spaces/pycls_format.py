"""The pycls config vocabulary both directions share (facebookresearch/pycls,
`pycls/core/config.py` key names): its defaults for omitted keys, the one stem type a RegNet
config may name, pycls's own ResNet depths and its test-time resize. `spaces.pycls_writer` writes
configs with it, `spaces.pycls_reader` reads them.
"""

from __future__ import annotations

from spaces.errors import FastscaleError


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


def pycls_test_size(resolution: int) -> int:
    """pycls's TEST.IM_SIZE: the resize before the centre crop of TRAIN.IM_SIZE (the network
    input), r / 0.875 rounded to an even size, as in pycls's configs (224→256, 300→342)."""
    return 2 * round(resolution / 0.875 / 2)


# pycls's own ImageNet ResNets (MODEL.TYPE resnet): MODEL.DEPTH -> stage depths.
PYCLS_RESNET_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
