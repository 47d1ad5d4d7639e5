"""A table of bad and edge-case inputs for every `fastscale` command, and its runner.

Each case is an argv (with `{name}` placeholders for files made by `make_inputs`) and what
it must give: ``"error"`` (exit 2, exactly one stderr line `fastscale: error: ...`) or
``"ok"`` (exit 0, optionally with a check on stdout). The runner imports the CLI (and the
heavy libraries it loads lazily) once, then forks one child per case: the child gets a
memory cap (RLIMIT_AS) and its own session, the parent kills it after a timeout. So a case
costs milliseconds unless the command really works, a hang is a hang (not a stuck test
run), and a memory blow-up fails one case instead of the machine.

Children point RAY_ADDRESS at a closed port: a case that reaches Ray instead of failing
validation first fails (and is counted) instead of starting a cluster.

`python -m tests.fuzz_cli` prints the counts per outcome (used for the issue's before/after
figures); tests/test_cli_fuzz.py asserts every case is clean.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests import fuzz_schemas

MEMORY_CAP = 3 * 1024**3  # bytes of address space per case (torch alone maps ~1 GiB)
TIMEOUT_S = 15.0
OUTCOMES = ("clean", "traceback", "hang", "memory", "accepted-bad", "multi-line", "wrong")


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    expect: str = "error"  # "error", "ok", or "either" (a clean refusal or a checked result)
    check: str | None = None  # name of a stdout check in CHECKS, for "ok"/"either"
    note: str = ""


def _json_int_at_least(key: str, floor: int):
    def check(stdout: str) -> bool:
        data = json.loads(stdout)
        items = data if isinstance(data, list) else [data]
        return all(isinstance(d[key], int) and d[key] >= floor for d in items)

    return check


CHECKS = {
    # RegNetX-200MF at 10^9 px: ~199e6 * (1e9/224)^2 ≈ 4e21 flops; int64 wraps at 9.2e18
    "flops>=1e21": _json_int_at_least("flops", 10**21),
    "flops>0": _json_int_at_least("flops", 1),
    "json": lambda out: json.loads(out) is not None,
    "nonempty": lambda out: bool(out.strip()),
}

LONG = "x" * 5000


def _c(*argv: str, expect: str = "error", check: str | None = None, note: str = "") -> Case:
    return Case(tuple(argv), expect, check, note)


def schema_cases() -> list[Case]:
    """One case per generated schema mutation (tests/fuzz_schemas.py): each must be refused."""
    return [
        _c(*argv, note=f"{kind} {where}: {what}")
        for i, (kind, where, what, _) in enumerate(fuzz_schemas.generated())
        if (argv := fuzz_schemas.argv_of(i, kind)) is not None
    ]


def cases() -> list[Case]:
    """The table. Placeholders in braces are paths made by `make_inputs`."""
    bad_numbers = ["-1", "0", "nan", "inf", "-inf", "1e400", "abc", "", "1e30", "9" * 30]
    out: list[Case] = []
    # --- models / complexity / export / sample -------------------------------------------
    out += [
        _c("models", "NoSuchNet*"),
        _c("models", LONG),
        _c("models", "--json", expect="ok", check="json"),
        _c("complexity", "nope"),
        _c("complexity", "{dir}/absent1/nope.json", note="missing file"),
        _c("complexity", "", note="empty argument"),
        _c("complexity", "."),
        _c("complexity", LONG, note="name over 4096 chars"),
        _c("complexity", "/tmp/" + LONG + ".json", note="path over 4096 chars"),
        _c("complexity", "{dir}/" + "a" * 300 + ".json", note="file name over 255 chars"),
        _c("complexity", "{w0_huge}", note="w0: 8e30"),
        _c("complexity", "{wm_inf}", note="wm: Infinity"),
        _c("complexity", "{wa_nan}"),
        _c("complexity", "{depth_huge}", note="depth 10^9"),
        _c("complexity", "{stage_depth_huge}", note="a stage of depth 10^9"),
        _c("complexity", "{width_huge}", note="width 10^20"),
        _c("complexity", "{res_huge}", note="resolution 10^9 in the file"),
        _c("complexity", "{classes_huge}", note="num_classes 1e25"),
        _c("complexity", "{depth_string}", note="a string where a number belongs"),
        _c("complexity", "{depth_float}", note="depth 12.5"),
        _c("complexity", "{depth_bool}", note="depth true"),
        _c("complexity", "{depth_list}", note="depth [1, 2]"),
        _c("complexity", "{negative_width}"),
        _c("complexity", "{stage_mismatch}"),
        _c("complexity", "{nested_yaml}", note="YAML nested 10k deep"),
        _c("complexity", "{nested_json}", note="JSON nested 100k deep"),
        _c("complexity", "{dir}/absent1/model.pt", note="missing TorchScript file"),
        _c("complexity", "{dir}/absent1/model.pt2", note="missing torch.export file"),
        _c("complexity", "no_such_pkg.mod:build", note="factory that does not import"),
        _c("complexity", "os.path:join", note="factory that raises"),
        _c("complexity", "tests.trace_models:branchy", note="data-dependent forward"),
        _c("complexity", "tests.trace_models:mobilenet_like", "--input-shape", "0,0"),
        _c("complexity", "tests.trace_models:mobilenet_like", "--input-shape", "1,32,32"),
        _c(
            "complexity", "tests.trace_models:mobilenet_like", "--kwargs", "{{"
        ),  # braces doubled: argv is str.format-ted
        _c("complexity", "tests.trace_models:mobilenet_like", "--kwargs", '{{"width": -1}}'),
        _c("complexity", "timm:" + "x" * 300, note="timm name, timm missing or unknown"),
        _c(
            "complexity",
            "tests.trace_models:mobilenet_like",
            "-r",
            "32",
            "--conventions",
            expect="ok",
            check="nonempty",
        ),  # fmt: skip
        _c("candidates", "nope"),
        _c("candidates", "RegNetX-200MF", "--max-memory", "12GB", note="no profile"),
        _c("candidates", "RegNetX-200MF", "--max-params", "abc"),
        _c("candidates", "RegNetX-200MF", "tests.trace_models:raises"),
        _c(
            "candidates",
            "RegNetX-200MF",
            "RegNetX-400MF",
            "--max-params",
            "3M",
            expect="ok",
            check="nonempty",
        ),  # fmt: skip
        _c("complexity", "{alias_bomb}", note="YAML with 100k aliases"),
        _c("complexity", "{binary}", note="binary file"),
        _c("complexity", "{latin1}", note="Latin-1 file"),
        _c("complexity", "{fifo}", note="a FIFO as a spec"),
        _c("complexity", "/dev/zero", note="/dev/zero as a spec"),
        _c("complexity", "{big_file}", note="a 200 MB spec file"),
        _c("complexity", "{empty_file}"),
        _c("complexity", "{empty_list}"),
        _c("complexity", "{scalar_yaml}"),
        _c("complexity", "{unknown_field}"),
        _c("complexity", "{dir}", note="a directory"),
        _c("complexity", "{pycls_yaml}", "--json", expect="ok", check="flops>0", note="pycls YAML"),
        _c("complexity", "{good}", "--json", expect="ok", check="flops>0"),
        _c(
            "complexity",
            "{huge_valid}",
            "--json",
            expect="ok",
            check="flops>=1e21",
            note="a valid network with counts past 2**63: exact",
        ),
        _c("scale", "{huge_valid}", "--strategy", "dWr", "--factor", "2"),
        _c("scale", "{huge_valid}", "--strategy", "dWr", "--target", "1e18"),
        _c("plan", "{huge_valid}", "--target", "1e18"),
        _c(
            "complexity",
            "RegNetX-200MF",
            "-r",
            "1000000000",
            "--json",
            expect="either",
            check="flops>=1e21",
            note="int64 overflow",
        ),
        _c("complexity", "RegNetX-200MF", "-r", "99999999999999999999999"),
        _c("complexity", "RegNetX-200MF", "-r", "abc"),
        _c("complexity", "RegNetX-200MF", "-r", "-5"),
        _c("complexity", "RegNetX-200MF", "-r", "nan"),
        _c("export", "RegNetX-200MF", "--num-classes", "1e25"),
        _c(
            "export",
            "RegNetX-200MF",
            "--num-classes",
            "10000000000000000000000000",
            expect="either",
            check="nonempty",
        ),
        _c("export", "RegNetX-200MF", "-r", "0"),
        _c("export", "{resnet_5_stages}", "--format", "timm", "--out", "{dir}/r5.py"),
        _c("export", "{resnet_2_stages}", "--format", "timm", "--out", "{dir}/r2.py"),
        _c(
            "export",
            "RegNetX-200MF",
            "--out",
            "{dir}/absent2/dir/x.yaml",
            expect="either",
        ),
        _c("export", "RegNetX-200MF", "--out", "{dir}"),
        _c("export", "RegNetX-200MF", "--out", "/tmp/" + LONG),
        _c("export", "{w0_huge}"),
        _c("export", "RegNetX-200MF", "--format", "xml"),
        _c("export", "RegNetX-200MF", expect="ok", check="nonempty"),
        _c("sample", "--space", "regnetx", "--regime", "1e30", "-n", "1"),
        _c("sample", "--space", "regnetx", "--regime", "1", "-n", "1"),
        _c("sample", "--space", "regnetx", "--regime", "nan"),
        _c("sample", "--space", "regnetx", "--regime", "-4GF"),
        _c("sample", "--space", "regnetx", "--regime", "4GF", "-n", "1000000000"),
        _c(
            "sample",
            "--space",
            "regnetx",
            "--regime",
            "4GF",
            "--seed",
            "-1",
            "-n",
            "1",
            expect="either",
            check="nonempty",
            note="negative seed",
        ),
        _c(
            "sample",
            "--space",
            "regnetx",
            "--regime",
            "4GF",
            "--seed",
            "1" * 40,
            "-n",
            "1",
            expect="either",
            check="nonempty",
        ),
        _c("sample", "--space", "regnetx", "--regime", "4GF", "-r", "1000000000", "-n", "1"),
        _c("sample", "--space", "regnetx", "--regime", "4GF", "--tolerance", "nan"),
        _c(
            "sample",
            "--space",
            "regnetx",
            "--regime",
            "400MF",
            "-n",
            "1",
            "--out",
            "{dir}/absent3/x/y/z.json",
            expect="either",
            check="nonempty",
        ),
        _c("sample", "--space", "regnetq", "--regime", "4GF"),
        _c(
            "sample",
            "--space",
            "regnetx",
            "--regime",
            "400MF",
            "-n",
            "2",
            expect="ok",
            check="nonempty",
        ),
    ]
    for value in bad_numbers:
        out.append(_c("complexity", "RegNetX-200MF", "-r", value))
    # --- scale / plan --------------------------------------------------------------------
    out += [
        _c("scale", "RegNetX-200MF", "--strategy", "dWr", "--factor", value)
        for value in bad_numbers
    ]
    out += [
        _c("scale", "RegNetX-200MF", "--strategy", "dWr", "--target", value)
        for value in bad_numbers
    ]
    out += [
        _c("scale", "RegNetX-200MF", "--alpha", value, "--factor", "2")
        for value in ("nan", "inf", "-1", "2", "abc")
    ]
    out += [
        _c("scale", "RegNetX-200MF", "--strategy", "dWr", "--target", "4GF", "--tolerance", v)
        for v in ("nan", "-1", "2", "inf")
    ]
    out += [
        _c("scale", "RegNetX-200MF", "--strategy", "zz", "--factor", "2"),
        _c("scale", "RegNetX-200MF", "--strategy", "d1_w8_q1", "--factor", "2"),
        _c("scale", "RegNetX-200MF", "--strategy", "d0_w0_r0", "--factor", "2"),
        _c("scale", "RegNetX-200MF", "--strategy", "d1e400_w1", "--factor", "2"),
        _c("scale", "RegNetX-200MF", "--strategy", "d-1_w1", "--factor", "2"),
        _c("scale", "RegNetX-200MF", "--strategy", LONG, "--factor", "2"),
        _c("scale", "RegNetX-200MF", "--strategy", "dWr", "--factor", "1e15"),
        _c("scale", "RegNetX-200MF", "--strategy", "dWr", "--factor", "1e-15"),
        _c("scale", "RegNetX-200MF", "--strategy", "dWr", "--target", "1e30"),
        _c("scale", "RegNetX-200MF", "--strategy", "dWr", "--target", "1"),
        _c(
            "scale",
            "RegNetX-200MF",
            "--strategy",
            "dWr",
            "--factor",
            "2",
            "--out",
            "{dir}/absent4/x/" + LONG,
        ),
        _c("scale", "{w0_huge}", "--strategy", "dWr", "--factor", "2"),
        _c(
            "scale",
            "RegNetX-200MF",
            "--strategy",
            "dWr",
            "--target",
            "800MF",
            expect="ok",
            check="nonempty",
        ),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", "0:1:1e-9"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", "0:inf:0.1"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", "0:1:nan"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", "nan"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", "-1,2"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", "1:0:0.1"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", ",,,"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", "a:b:c"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--alphas", ",".join(["0.5"] * 100000)),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--max-runtime", "nan"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--max-runtime", "-1"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--max-acts", "-1"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--tolerance", "nan"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--tolerance", "5"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--strategies", "zz"),
        _c(
            "plan",
            "RegNetX-200MF",
            "--target",
            "4GF",
            "--strategies",
            "",
            expect="ok",
            check="nonempty",
        ),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--profile", "nope"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--profile", "{profile_typo}"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--profile", "{profile_strings}"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--profile", "{profile_extreme}"),
        _c(
            "plan",
            "RegNetX-200MF",
            "--target",
            "4GF",
            "--profile",
            "{profile_extreme}",
            "--max-runtime",
            "10",
            note="overflow: one line, no numpy warning",
        ),
        _c("profile", "predict", "{profile_extreme}", "RegNetX-200MF"),
        _c("time", "RegNetX-200MF", "--threads", "1000", note="beyond the cores (libgomp)"),
        _c("calibrate", "RegNetX-200MF", "--out", "/proc/fs-cal/p.json", note="checked first"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--profile", "{binary}"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--profile", "/dev/zero"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--profile", "{fifo}"),
        _c("plan", "RegNetX-200MF", "--target", "1e30"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--out-dir", "{dir}/absent5/" + LONG),
        _c(
            "plan",
            "RegNetX-200MF",
            "--target",
            "4GF",
            "--alphas",
            "0,0.5",
            expect="ok",
            check="nonempty",
        ),
    ]
    # --- profile -------------------------------------------------------------------------
    out += [
        _c("profile", "predict", "nope", "RegNetX-200MF"),
        _c("profile", "predict", "{profile_typo}", "RegNetX-200MF"),
        _c("profile", "predict", "v100x8-paper", "NoSuchNet"),
        _c("profile", "predict", "v100x8-paper", "RegNetX-200MF", "-r", "-1"),
        _c("profile", "predict", "v100x8-paper", "RegNetX-200MF", "--batch-size", "0"),
        _c(
            "profile",
            "predict",
            "v100x8-paper",
            "RegNetX-200MF",
            "--json",
            expect="ok",
            check="json",
        ),  # fmt: skip
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--max-memory", "12XB"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--max-memory", "nan"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--max-memory", "-1GB"),
        _c("plan", "RegNetX-200MF", "--target", "4GF", "--max-memory", "12GB"),
        _c(
            "plan",
            "RegNetX-200MF",
            "--target",
            "4GF",
            "--max-memory",
            "12GB",
            "--profile",
            "v100x8-paper",
        ),  # fmt: skip
        _c("profile", "show", "nope"),
        _c("profile", "show", "{profile_typo}"),
        _c("profile", "show", "{profile_strings}"),
        _c("profile", "show", "{nested_json}"),
        _c("profile", "show", "/dev/zero"),
        _c("profile", "show", LONG),
        _c("profile", "fit", "{timings_nan}", "--out", "{dir}/p1.json"),
        _c("profile", "fit", "{timings_strings}", "--out", "{dir}/p2.json"),
        _c("profile", "fit", "{timings_two_rows}", "--out", "{dir}/p3.json"),
        _c("profile", "fit", "{timings_negative}", "--out", "{dir}/p4.json"),
        _c("profile", "fit", "{timings_huge}", "--out", "{dir}/p4b.json"),
        _c("profile", "fit", "{binary}", "--out", "{dir}/p5.json"),
        _c("profile", "fit", "{latin1}", "--out", "{dir}/p5b.json"),
        _c("profile", "fit", "/dev/zero", "--out", "{dir}/p6.json"),
        _c("profile", "fit", "{fifo}", "--out", "{dir}/p7.json"),
        _c("profile", "fit", "{nested_json}", "--out", "{dir}/p8.json"),
        _c("profile", "fit", "{empty_file}", "--out", "{dir}/p9.json"),
        _c(
            "profile",
            "fit",
            "{timings_good}",
            "--out",
            "{dir}/absent6/x/p.json",
            expect="either",
            check="nonempty",
        ),
        _c("profile", "fit", "{timings_good}", "--out", "{dir}/p10.json", "--batch", "-1"),
        _c("profile", "fit", "{timings_good}", "--out", "{dir}/p11.json", "--mode", "zz"),
        _c(
            "profile",
            "fit",
            "{timings_collinear}",
            "--out",
            "{dir}/p12.json",
            "--json",
            expect="either",
            check="json",
            note="NaN in the fit must be null",
        ),
        _c(
            "profile",
            "fit",
            "{timings_good}",
            "--out",
            "{dir}/p13.json",
            expect="ok",
            check="nonempty",
        ),
        _c("profile", "list", expect="ok", check="nonempty"),
    ]
    # --- train / time / calibrate (must refuse before training) -------------------------
    quick = ["--train-size", "40", "--val-size", "20", "-r", "16", "--batch-size", "8"]
    out += [
        _c(
            "train",
            "RegNetX-200MF",
            "--train-size",
            "1",
            "--val-size",
            "10",
            "-r",
            "16",
            "--epochs",
            "1",
            note="one image: BatchNorm cannot train",
        ),
        _c("train", "RegNetX-200MF", "--epochs", "0"),
        _c("train", "RegNetX-200MF", "--epochs", "1000000000000", *quick),
        _c("train", "RegNetX-200MF", "--batch-size", "1000000000", "--train-size", "40"),
        _c("train", "RegNetX-200MF", "-r", "1000000000", "--train-size", "40"),
        _c("train", "RegNetX-200MF", "-r", "-1"),
        _c("train", "RegNetX-200MF", "-r", "4"),
        _c("train", "RegNetX-200MF", "--base-lr", "nan", *quick),
        _c("train", "RegNetX-200MF", "--base-lr", "-1", *quick),
        _c("train", "RegNetX-200MF", "--warmup-epochs", "nan", *quick),
        _c("train", "RegNetX-200MF", "--warmup-epochs", "-1", *quick),
        _c("train", "RegNetX-200MF", "--seed", "-1", "--epochs", "0", note="negative seed"),
        _c("train", "RegNetX-200MF", "--seed", "1" * 40, *quick),
        _c("train", "RegNetX-200MF", "--dataset", "{dir}/absent7", *quick),
        _c("train", "RegNetX-200MF", "--dataset", "{dir}", *quick, note="empty dir"),
        _c("train", "RegNetX-200MF", "--dataset", "{imagefolder_bad}", *quick),
        _c("train", "RegNetX-200MF", "--dataset", LONG, *quick),
        _c("train", "RegNetX-200MF", "--dataset", "mnist", *quick),
        _c("train", "RegNetX-200MF", "--device", "tpu"),
        _c("train", "RegNetX-200MF", "--threads", "0"),
        _c("train", "RegNetX-200MF", "--threads", "100000", *quick),
        _c("train", "RegNetX-200MF", "--num-workers", "100000", *quick),
        _c("train", "RegNetX-200MF", "--out", "{dir}/absent8/" + LONG, *quick),
        _c("train", "RegNetX-200MF", "--out", "{good}", *quick, note="--out is a file"),
        _c("train", "{w0_huge}", *quick),
        _c(
            "time",
            "RegNetX-200MF",
            "-r",
            "100000",
            "--repeats",
            "1",
            "--warmup",
            "0",
            note="a 100000 px input",
        ),
        _c("time", "RegNetX-200MF", "-r", "-1"),
        _c("time", "RegNetX-200MF", "--batch-size", "1000000000", "-r", "32", "--repeats", "1"),
        _c("time", "RegNetX-200MF", "--repeats", "1000000000000", "-r", "16"),
        _c("time", "RegNetX-200MF", "--threads", "0"),
        _c("time", "RegNetX-200MF", "--device", "cuda", "--repeats", "1", "-r", "16"),
        _c("time", "RegNetX-200MF", "--clock", "cpu", "--device", "cuda"),
        _c("time", "nope"),
        _c("time", "{fifo}"),
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c1.json", "--factors", "nan"),
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c2.json", "--factors", "-1,2"),
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c3.json", "--factors", "1e30"),
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c4.json", "--factors", ""),
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c5.json", "--strategies", "zz"),
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c6.json", "--strategies", ""),
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c7.json", "-r", "-1"),
        _c(
            "calibrate",
            "RegNetX-200MF",
            "--out",
            "{dir}/absent9/x/c.json",
            "--factors",
            "1",
            "--spec-only",
        ),  # fmt: skip
        _c("calibrate", "RegNetX-200MF", "--out", "{dir}/c8.json", "--device", "cuda"),
    ]
    # --- study ---------------------------------------------------------------------------
    study = ["study", "run", "--out"]
    out += [
        _c(*study, "{dir}/s1", "--space", "regnetx", "--regime", "1e30", "-n", "1"),
        _c(*study, "{dir}/s2", "--space", "regnetx", "--regime", "nan"),
        _c(
            *study,
            "{dir}/s3",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--seed",
            "-1",
            "--dataset",
            "{dir}/absent10",
            note="negative seed, bad dataset",
        ),
        _c(
            *study,
            "{dir}/s4",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--storage",
            "garbage://",
            "--sampler",
            "tpe",
        ),
        _c(
            *study,
            "{dir}/s5",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--storage",
            "postgresql://nobody@127.0.0.1:9/none",
            "--sampler",
            "tpe",
            note="unreachable database",
        ),
        _c(
            *study,
            "{dir}/s6",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--storage",
            "sqlite:///{dir}/absent11/dir/x.db",
            "--sampler",
            "tpe",
        ),
        _c(
            *study,
            "{dir}/s7",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--address",
            "::1:6379",
            note="IPv6 without brackets",
        ),
        _c(*study, "{dir}/s8", "--space", "regnetx", "--regime", "20MF", "--address", "[::1:6379"),
        _c(*study, "{dir}/s9", "--space", "regnetx", "--regime", "20MF", "--address", "host:99999"),
        _c(*study, "{dir}/s10", "--space", "regnetx", "--regime", "20MF", "--address", LONG),
        _c(
            *study,
            "{dir}/s11",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--train-size",
            "1",
            "--dataset",
            "{dir}/absent12",
        ),
        _c(
            *study,
            "{dir}/s12",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--epochs",
            "1000000000000",
            "--dataset",
            "{dir}/absent13",
        ),
        _c(*study, "{dir}/s13", "--space", "regnetx", "--regime", "20MF", "--base-lr", "nan"),
        _c(*study, "{dir}/s14", "--space", "regnetx", "--regime", "20MF", "--base-lr", "inf"),
        _c(
            *study,
            "{dir}/s15",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "--resolution",
            "1000000000",
        ),
        _c(*study, "{dir}/s16", "--specs", "{w0_huge}"),
        _c(*study, "{dir}/s17", "--specs", "{binary}"),
        _c(*study, "{dir}/s18", "--specs", "{fifo}"),
        _c(*study, "{dir}/s19", "--specs", "{nested_yaml}"),
        _c(
            *study, "{dir}/s20", "--space", "regnetx", "--regime", "20MF", "--cpus-per-trial", "nan"
        ),
        _c(
            *study, "{dir}/s21", "--space", "regnetx", "--regime", "20MF", "--cpus-per-trial", "inf"
        ),
        _c(
            *study,
            "{dir}/s22",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
            "-n",
            "1000000000000",
            "--dataset",
            "{dir}/absent14",
        ),
        _c(*study, "{dir}/s23", "--space", "regnetx", "--regime", "20MF", "--dataset", LONG),
        _c(*study, "{dir}/absent15/" + LONG, "--space", "regnetx", "--regime", "20MF"),
        _c(*study, "{good}", "--space", "regnetx", "--regime", "20MF", note="--out is a file"),
        _c(*study, "{dir}/s24"),
        _c("study", "show", "{dir}/nothing-here"),
        _c("study", "show", "{good}"),
        _c("study", "show", "{dir}", note="a directory without a study"),
        _c("study", "show", LONG),
        _c(
            "study",
            "submit",
            "--address",
            "garbage",
            "--out",
            "{dir}/s25",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
        ),
        _c(
            "study",
            "submit",
            "--address",
            "http://127.0.0.1:9",
            "--out",
            "{dir}/s26",
            "--space",
            "regnetx",
            "--regime",
            "20MF",
        ),
        _c("study", "status", "raysubmit_x", "--address", "garbage"),
        _c("study", "status", "raysubmit_x", "--address", "http://[::1"),
        _c("study", "status", "raysubmit_x", "--address", "http://127.0.0.1:9"),
        _c("study", "logs", "raysubmit_x", "--address", "::1:8265"),
        _c("study", "logs", "raysubmit_x", "--address", "http://127.0.0.1:9"),
    ]
    out += [
        _c("study", "repair", "{dir}/absent17"),
        _c("study", "repair", "{good}", note="a file, not a study directory"),
        _c("study", "repair", "{dir}/emptydir"),
        _c("study", "repair", LONG),
        _c("study", "repair", "{dir}/r1", "--storage", "garbage://", "--sampler", "tpe"),
        _c("study", "repair", "{dir}/r2", "--specs", "{fifo}"),
        _c("study", "repair", "{dir}/r3", "--regime", "nan"),
        _c("study", "repair", "{dir}/r4", "--seed", "-1"),
    ]
    # --- compare / report ----------------------------------------------------------------
    out += [
        _c("analyze"),
        _c("analyze", "{dir}/absent_source", "--out", "{dir}/an0", note="missing source"),
        _c("analyze", "{dir}/emptydir", "--out", "{dir}/an1", note="not a study"),
        _c("analyze", "{fifo}", "--out", "{dir}/an2", note="a FIFO as sweep.json"),
        _c("analyze", "{nested_json}", "--out", "{dir}/an3"),
        _c("analyze", "{empty_list}", "--out", "{dir}/an4", note="a sweep with no job"),
        _c("analyze", "{timings_good}", "--out", "{dir}/an5", note="JSON of another format"),
        _c("analyze", "{binary}", "--out", "{dir}/an6"),
        _c("analyze", "{csv_no_error}", "--out", "{dir}/an7"),
        _c("analyze", "{csv_text_error}", "--out", "{dir}/an8"),
        _c("analyze", "{csv_bad_flops}", "--out", "{dir}/an9"),
        _c("analyze", "{csv_bad_spec}", "--out", "{dir}/an10"),
        _c("analyze", "{csv_good}", "--out", "{dir}/an11", "--within", "nan"),
        _c("analyze", "{csv_good}", "--out", "{dir}/an12", "--top", "1"),
        _c("analyze", "{csv_good}", "--out", "{dir}/an13", "--bootstrap", "0"),
        _c("analyze", "{csv_good}", "--out", "{good}", note="--out is a file"),
        _c(
            "analyze",
            "{csv_good}",
            "--out",
            "{dir}/an14",
            "--bootstrap",
            "20",
            "--permutations",
            "20",
            expect="ok",
        ),  # fmt: skip
        _c("sample", "--space", "{binary}", "--regime", "400MF"),
        _c("sample", "--space", "{alias_bomb}", "--regime", "400MF"),
        _c("sample", "--space", "{dir}/emptydir", "--regime", "400MF"),
        _c("sample", "--space", "{fifo}", "--regime", "400MF"),
        _c("sample", "--space", "{space_wide}", "--regime", "400MF"),
        _c("sample", "--space", "{space_nan}", "--regime", "400MF"),
        _c("sample", "--space", "{space_typo}", "--regime", "400MF"),
        _c("study", "run", "--space", "{space_typo}", "--regime", "20MF", "--out", "{dir}/st_sp"),
        _c("compare", "--preset", "nope"),
        _c("compare", "--preset", "{preset_typo}", "--out", "{dir}/cmp1"),
        _c("compare", "--preset", "{preset_strings}", "--out", "{dir}/cmp2"),
        _c("compare", "--preset", "{preset_list_field}", "--out", "{dir}/cmp3"),
        _c("compare", "--preset", "{binary}", "--out", "{dir}/cmp4"),
        _c("compare", "--preset", "{alias_bomb}", "--out", "{dir}/cmp5"),
        _c("compare", "--preset", "{nested_yaml}", "--out", "{dir}/cmp6"),
        _c("compare", "--preset", "/dev/zero", "--out", "{dir}/cmp7"),
        _c("compare", "--preset", "{fifo}", "--out", "{dir}/cmp8"),
        _c("compare", "--preset", "cpu-quick", "-n", "0"),
        _c(
            "compare", "--preset", "cpu-quick", "--dataset", "{dir}/absent16", "--out", "{dir}/cmp9"
        ),
        _c("compare", "--preset", "cpu-quick", "--address", "::1:6379", "--out", "{dir}/cmp10"),
        _c("compare", "--preset", LONG),
        _c("report", "{dir}/nothing-here"),
        _c("report", "{good}"),
        _c("report", "{dir}"),
        _c("report", LONG),
        # --- the group itself ------------------------------------------------------------
        _c("nosuchcommand"),
        _c("--nosuchoption"),
        _c("complexity", "RegNetX-200MF", "--nosuchoption"),
        _c("--version", expect="ok", check="nonempty"),
        _c("--help", expect="ok", check="nonempty"),
    ]
    return out + schema_cases()


# --- input files -------------------------------------------------------------------------

GOOD = {"block": "Y", "depth": 13, "w0": 24, "wa": 36.44, "wm": 2.49, "group_width": 8}


def make_inputs(root: Path) -> dict[str, str]:
    """Write every input file the table names; return {placeholder: path}."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {"dir": str(root)}

    def spec(name: str, **changes) -> None:
        path = root / f"{name}.json"
        path.write_text(json.dumps({**GOOD, **changes}))
        files[name] = str(path)

    def text(name: str, content: str | bytes, suffix: str = ".yaml") -> None:
        path = root / f"{name}{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        files[name] = str(path)

    spec("good")
    spec("w0_huge", w0=8e30)
    (root / "wm_inf.json").write_text(json.dumps({**GOOD}).replace("2.49", "Infinity"))
    files["wm_inf"] = str(root / "wm_inf.json")
    (root / "wa_nan.json").write_text(json.dumps({**GOOD}).replace("36.44", "NaN"))
    files["wa_nan"] = str(root / "wa_nan.json")
    spec("depth_huge", depth=10**9)
    spec("res_huge", resolution=10**9)
    spec("classes_huge", num_classes=1e25)
    spec("depth_string", depth="thirteen")
    spec("depth_float", depth=12.5)
    spec("depth_bool", depth=True)
    spec("depth_list", depth=[1, 2])
    stage = {
        "family": "anynet", "block": "X", "depths": [1, 1, 1, 1], "widths": [8, 16, 32, 64],
        "group_widths": [8, 8, 8, 8], "bottlenecks": [1, 1, 1, 1], "strides": [2, 2, 2, 2],
    }  # fmt: skip
    text("stage_depth_huge", json.dumps({**stage, "depths": [1, 1, 10**9, 1]}), ".json")
    text("width_huge", json.dumps({**stage, "widths": [8, 16, 32, 10**20]}), ".json")
    text("negative_width", json.dumps({**stage, "widths": [8, -16, 32, 64]}), ".json")
    text("stage_mismatch", json.dumps({**stage, "widths": [8, 16]}), ".json")
    r50 = {"family": "anynet", "block": "R", "depths": [3, 4, 6, 3], "stem": "resnet",
           "widths": [256, 512, 1024, 2048], "group_widths": [64, 128, 256, 512],
           "bottlenecks": [0.25] * 4, "strides": [1, 2, 2, 2], "stem_width": 64}  # fmt: skip
    five = {**r50, **{k: [*r50[k], r50[k][-1]] for k in ("depths", "widths", "group_widths",
                                                          "bottlenecks", "strides")}}  # fmt: skip
    text("resnet_5_stages", json.dumps(five), ".json")  # timm's ResNet runs layer1..layer4
    text("resnet_2_stages", json.dumps({k: v[:2] if isinstance(v, list) else v
                                        for k, v in r50.items()}), ".json")  # fmt: skip
    huge = {**stage, "depths": [3, 10_000, 2, 1], "widths": [2**18, 2**19, 2**20, 2**20],
            "group_widths": [2**18, 2**19, 2**20, 2**20], "resolution": 16384}  # fmt: skip
    text("huge_valid", json.dumps(huge), ".json")
    text("nested_yaml", "a: " + "[" * 10000 + "]" * 10000 + "\n")
    text("nested_json", "[" * 100000 + "]" * 100000, ".json")
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb += ["b: [" + ", ".join(["*a8"] * 10000) + "]"]
    text("alias_bomb", "\n".join(bomb) + "\n")
    text("binary", bytes(range(256)) * 64)
    text("latin1", "block: X\ndepth: 13\nname: caf\xe9\n".encode("latin-1"))
    text("empty_file", "")
    text("empty_list", "[]", ".json")
    text("scalar_yaml", "42\n")
    spec("unknown_field", depht=13)
    big = root / "big_file.yaml"
    with big.open("wb") as fh:
        fh.truncate(200 * 1024**2)  # sparse: costs no disk
    files["big_file"] = str(big)
    fifo = root / "fifo.json"
    os.mkfifo(fifo)
    files["fifo"] = str(fifo)
    text(
        "pycls_yaml",
        "MODEL:\n  TYPE: regnet\n  NUM_CLASSES: 1000\nREGNET:\n  DEPTH: 13\n  W0: 24\n"
        "  WA: 36.44\n  WM: 2.49\n  GROUP_W: 8\n  SE_ON: true\n  STEM_W: 32\n"
        "TRAIN:\n  IM_SIZE: 224\n",
    )
    # runtime profiles and timings
    profile = {"name": "p", "c0": 0.1, "c_acts": 1e-9, "c_flops": 1e-12, "unit": "s"}
    text("profile_typo", json.dumps({**profile, "c_actz": 1e-9}), ".json")
    text("profile_strings", json.dumps({**profile, "c0": "fast"}), ".json")
    huge = {**profile, "c0": 1e308, "c_acts": 1e308, "c_flops": 1e308}  # finite, overflows
    text("profile_extreme", json.dumps(huge), ".json")
    rows = [
        {"flops": 10**8 * k, "acts": 10**6 * k + 7 * k * k, "time": 0.1 * k} for k in range(1, 6)
    ]
    text("timings_good", json.dumps(rows), ".json")
    text("timings_nan", json.dumps([{**r, "time": float("nan")} for r in rows]), ".json")
    text("timings_strings", json.dumps([{**r, "time": "slow"} for r in rows]), ".json")
    text("timings_two_rows", json.dumps(rows[:2]), ".json")
    text("timings_negative", json.dumps([{**r, "time": -1} for r in rows]), ".json")
    text("timings_huge", json.dumps([{**r, "flops": 1e300} for r in rows]), ".json")
    same = [{"flops": 10**8, "acts": 10**6, "time": 0.1 + 0.01 * k} for k in range(5)]
    text("timings_collinear", json.dumps(same), ".json")
    # presets
    text("preset_typo", (Path(__file__).parents[1] / "trials/compare/presets/cpu-quick.yaml")
         .read_text().replace("samples:", "sampels:"))  # fmt: skip
    text("preset_strings", (Path(__file__).parents[1] / "trials/compare/presets/cpu-quick.yaml")
         .read_text().replace("samples: 5", "samples: five"))  # fmt: skip
    text("preset_list_field", (Path(__file__).parents[1] / "trials/compare/presets/cpu-quick.yaml")
         .read_text().replace("tolerance: 0.02", "tolerance: [0.02]"))  # fmt: skip
    # analyze sources and design-space files
    good_row = json.dumps(GOOD).replace('"', '""')
    text("csv_no_error", "spec,err\n1,2\n", ".csv")
    text("csv_text_error", f'spec,error\n"{good_row}",bad\n"{good_row}",worse\n', ".csv")
    text("csv_bad_flops", f'spec,error,flops\n"{good_row}",0.1,-5\n"{good_row}",0.2,-1\n', ".csv")
    text("csv_bad_spec", 'spec,error\n"{""depth"": 1}",0.1\n"[]",0.2\n', ".csv")
    text("csv_good", f'spec,error\n"{good_row}",0.1\n"{good_row}",0.2\n"{good_row}",0.3\n', ".csv")
    text("space_wide", "base: regnetx\ndepth: [1, 400]\n")
    text("space_nan", "base: regnetx\nwm: [.nan, 3]\n")
    text("space_typo", "base: regnetx\ndepht: [13, 20]\n")
    files.update(fuzz_schemas.write(root))
    (root / "emptydir").mkdir()
    # an ImageFolder tree without a val/ split
    (root / "imagefolder_bad" / "train" / "a").mkdir(parents=True)
    files["imagefolder_bad"] = str(root / "imagefolder_bad")
    return files


# --- running -----------------------------------------------------------------------------


@dataclass
class Result:
    case: Case
    argv: list[str]
    outcome: str
    rc: int | None
    stderr: str
    seconds: float


def preload() -> None:
    """Import what commands load lazily, once, so each forked case starts warm."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import torch  # noqa: F401
    import yaml  # noqa: F401

    import trials.cli  # noqa: F401


def _child(argv: list[str], out_path: str, err_path: str, memory: int) -> None:
    os.setsid()
    # The cap is on what the case itself maps: a fork inherits the parent's address space,
    # which depends on what earlier tests imported and is not the case's doing.
    inherited = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (inherited + memory, inherited + memory))
    os.environ["RAY_ADDRESS"] = "127.0.0.1:9"  # never start a cluster from a fuzz case
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
    os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    rc = 1
    try:
        from trials.cli import main

        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a traceback is what we count
        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(rc if isinstance(rc, int) else 0)


def _classify(case: Case, rc: int | None, out: str, err: str, hung: bool, signum: int) -> str:
    if hung:
        return "hang"
    memory_words = ("MemoryError", "can't allocate memory", "bad_alloc", "Cannot allocate memory")
    if signum or any(w in err for w in memory_words):
        return "memory"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    lines = [line for line in err.splitlines() if line.strip()]
    if rc == 2:
        one = len(lines) == 1 and lines[0].startswith("fastscale: error: ")
        if case.expect == "ok":
            return "wrong"
        return "clean" if one else "multi-line"
    if rc == 0:
        if case.expect == "error":
            return "accepted-bad"
        try:
            good = CHECKS[case.check](out) if case.check else True
        except Exception:  # noqa: BLE001 - output that does not parse is a wrong answer
            good = False
        return "clean" if good else "wrong"
    return "multi-line" if lines else "wrong"


def run_case(case: Case, files: dict[str, str], timeout: float = TIMEOUT_S,
             memory: int = MEMORY_CAP) -> Result:  # fmt: skip
    argv = [a.format(**files) if "{" in a else a for a in case.argv]
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = f"{tmp}/out", f"{tmp}/err"
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(argv, out_path, err_path, memory)
        hung, status = False, 0
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - start > timeout:
                hung = True
                os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                break
            time.sleep(0.005)
        seconds = time.monotonic() - start
        out = Path(out_path).read_text(errors="replace")
        err = Path(err_path).read_text(errors="replace")
    signum = 0 if hung or not os.WIFSIGNALED(status) else os.WTERMSIG(status)
    rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    outcome = _classify(case, rc, out, err, hung, signum)
    return Result(case, argv, outcome, rc, err, seconds)


def run_table(root: Path, timeout: float = TIMEOUT_S) -> list[Result]:
    preload()
    files = make_inputs(root)
    return [run_case(c, files, timeout) for c in cases()]


def counts(results: list[Result]) -> dict[str, int]:
    c = Counter(r.outcome for r in results)
    return {"cases": len(results), **{k: c.get(k, 0) for k in OUTCOMES}}


def main() -> None:
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else TIMEOUT_S
    with tempfile.TemporaryDirectory() as tmp:
        results = run_table(Path(tmp) / "inputs", timeout)
    for r in results:
        if r.outcome != "clean":
            shown = " ".join(a if len(a) < 60 else a[:25] + "…" for a in r.argv)
            last = (r.stderr.strip().splitlines() or [""])[-1][:150]
            print(f"{r.outcome:12} rc={r.rc} {r.seconds:5.1f}s  {shown}\n{'':14}{last}")
    print(json.dumps(counts(results)))


if __name__ == "__main__":
    main()
