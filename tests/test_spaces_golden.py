"""Golden complexity: every published pycls value, digit for digit, over the whole registry."""

import re
from pathlib import Path

import pytest

from spaces import complexity, get_model, list_models
from spaces.specs import EfficientNetSpec, RegNetSpec

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "design" / "REFERENCE.md"

# Copied from REFERENCE §5 (flops, params, acts) so the test runs without the shared folder too.
GOLDEN = {
    "RegNetX-200MF": (199040872, 2684792, 2164056),
    "RegNetX-400MF": (397678568, 5157512, 3143272),
    "RegNetX-600MF": (600891112, 6196040, 3975096),
    "RegNetX-800MF": (799700712, 7259656, 5148744),
    "RegNetX-1.6GF": (1602850792, 9190136, 7933512),
    "RegNetX-3.2GF": (3176622952, 15296552, 11367432),
    "RegNetX-4.0GF": (3964499816, 22118248, 12201608),
    "RegNetX-6.4GF": (6460292264, 26209256, 16369744),
    "RegNetX-8.0GF": (7995133416, 39572648, 14059688),
    "RegNetX-12GF": (12086679016, 46106056, 21366568),
    "RegNetX-16GF": (15940756456, 54278536, 25515496),
    "RegNetX-32GF": (31735930792, 107811560, 36302160),
    "RegNetY-200MF": (199519076, 3162996, 2168052),
    "RegNetY-400MF": (401849056, 4344144, 3892496),
    "RegNetY-600MF": (601227608, 6055160, 4334296),
    "RegNetY-800MF": (797183328, 6263168, 5249888),
    "RegNetY-1.6GF": (1612087326, 11202430, 8044814),
    "RegNetY-3.2GF": (3176496162, 19436338, 11263418),
    "RegNetY-4.0GF": (3973301344, 20646656, 12287200),
    "RegNetY-6.4GF": (6355221876, 30583252, 16407188),
    "RegNetY-8.0GF": (7963074196, 39180068, 17968916),
    "RegNetY-12GF": (12092395504, 51822544, 21384496),
    "RegNetY-16GF": (15911534044, 83590140, 23041228),
    "RegNetY-32GF": (32279583362, 145046770, 30261570),
    "EfficientNet-B0": (385825092, 5288548, 6748036),
    "EfficientNet-B1": (686817992, 7794184, 10884328),
    "EfficientNet-B2": (993578282, 9109994, 13832834),
    "EfficientNet-B3": (1827162472, 12233232, 23831296),
    "EfficientNet-B4": (4393801064, 19341616, 49489032),
    "EfficientNet-B5": (10266426072, 30389784, 98857400),
}
# RegNetZ has no published file: REFERENCE gives params and acts to 0.1M.
APPROX = {"RegNetZ-500MF": (7.1e6, 5.9e6), "RegNetZ-4GF": (27.1e6, 24.2e6)}


def test_registry_is_exactly_the_reference_zoo():
    from tests.test_resnet import RESNET_PARAMS  # the ResNet family's golden values

    assert set(list_models()) == set(GOLDEN) | set(APPROX) | set(RESNET_PARAMS)
    assert len(list_models("RegNetX*")) == 12 and len(list_models("regnety*")) == 12


@pytest.mark.parametrize("name", list_models("RegNet*") + list_models("EfficientNet*"))
def test_golden_complexity(name):
    cx = complexity(get_model(name))
    if name in GOLDEN:
        assert tuple(cx) == GOLDEN[name]
    else:
        params, acts = APPROX[name]
        assert round(cx.params / 1e5) == round(params / 1e5)
        assert round(cx.acts / 1e5) == round(acts / 1e5)
        assert round(cx.flops / 1e8) == {"RegNetZ-500MF": 5, "RegNetZ-4GF": 40}[name]


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared/design not beside the checkout")
def test_golden_table_matches_reference_file():
    """The copy above is the reference's table: re-read it so the two cannot drift."""
    text = REFERENCE.read_text().split("## 6")[0]
    found = {}
    for line in text.splitlines():
        m = re.match(r"\| (RegNet[XY]-\S+|EfficientNet-B\d) \|(.*)", line)
        if m:
            cols = [c.strip() for c in m.group(2).split("|") if c.strip()]
            found[m.group(1)] = tuple(int(c.replace(",", "")) for c in cols[-3:])
    assert found == GOLDEN


def test_efficientnet_rows_match_reference_structure():
    b3 = get_model("EfficientNet-B3")
    assert isinstance(b3, EfficientNetSpec)
    assert (b3.resolution, b3.stem_width, b3.head_width) == (300, 40, 1536)
    assert b3.strides == (1, 2, 2, 2, 1, 2, 1) and b3.kernels == (3, 3, 5, 3, 5, 5, 3)


def test_regnet_defaults_per_block():
    y = get_model("RegNetY-4.0GF")
    assert isinstance(y, RegNetSpec) and (y.bottleneck, y.se_ratio, y.head_width) == (1.0, 0.25, 0)
    z = get_model("RegNetZ-500MF")
    assert (z.bottleneck, z.se_ratio, z.head_width, z.activation) == (4.0, 0.25, 1024, "silu")
    assert get_model("RegNetX-200MF").se_ratio == 0.0


def test_generated_stages_of_regnety_4gf():
    s = get_model("RegNetY-4.0GF").stages()
    assert s.depths == (2, 6, 12, 2)
    assert s.widths == (128, 192, 512, 1088)
    assert s.group_widths == (64, 64, 64, 64)


def test_in_channels_and_classes_are_honoured():
    base = complexity(get_model("RegNetY-200MF"))
    gray = complexity(get_model("RegNetY-200MF", in_channels=1, num_classes=10))
    # stem: 3x3 conv at 112x112 loses 2 input channels; fc: 368 -> 10 instead of 1000
    stem = 9 * 2 * 32 * 112 * 112
    fc = 368 * 990 + 990
    assert base.flops - gray.flops == stem + fc
    assert base.params - gray.params == 9 * 2 * 32 + fc
    assert base.acts - gray.acts == 990


def test_generated_zoo_table_is_current():
    """docs/zoo.md is generated from the registry; regenerate it when the registry changes."""
    from spaces.registry import zoo_markdown

    zoo = Path(__file__).resolve().parents[1] / "docs" / "zoo.md"
    assert zoo.read_text() == zoo_markdown(), "run `fastscale models --markdown > docs/zoo.md`"
