"""The design-space commands keep their CLI contract; bad input is one line and exit 2."""

import json
import subprocess
import sys

import pytest

from trials.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_the_registry(capsys):
    code, out, _ = run(capsys, "models", "--json")
    names = [m["name"] for m in json.loads(out)]
    assert (
        code == 0 and "RegNetY-4.0GF" in names and "EfficientNet-B5" in names and len(names) == 50
    )


def test_models_table_is_human_readable(capsys):
    code, out, _ = run(capsys, "models", "RegNetZ*")
    assert code == 0 and "RegNetZ-500MF" in out and "RegNetY" not in out


def test_complexity_json_single_and_list(capsys, tmp_path):
    code, out, _ = run(capsys, "complexity", "RegNetY-4.0GF", "--json")
    obj = json.loads(out)
    assert code == 0 and (obj["flops"], obj["params"], obj["acts"]) == (
        3973301344,
        20646656,
        12287200,
    )
    code, out, _ = run(capsys, "complexity", "RegNetX-200MF", "EfficientNet-B0", "--json")
    objs = json.loads(out)
    assert [o["flops"] for o in objs] == [199040872, 385825092]
    spec = tmp_path / "y.yaml"
    spec.write_text(
        "family: regnet\nblock: Y\ndepth: 22\nw0: 96\nwa: 31.41\nwm: 2.24\ngroup_width: 64\n"
    )
    code, out, _ = run(capsys, "complexity", str(spec), "--json", "--resolution", "64")
    assert json.loads(out)["resolution"] == 64


def test_sample_out_feeds_complexity(capsys, tmp_path):
    out_file = tmp_path / "s.json"
    code, out, _ = run(
        capsys,
        "sample",
        "--space",
        "regnety",
        "--regime",
        "400MF",
        "-n",
        "4",
        "--seed",
        "1",
        "--json",
        "--out",
        str(out_file),
    )
    records = json.loads(out)
    assert code == 0 and len(records) == 4
    assert all(
        {"depth", "w0", "wa", "wm", "group_width", "flops", "params", "acts"} <= set(r)
        for r in records
    )
    assert json.loads(out_file.read_text()) == records
    code, out, _ = run(capsys, "complexity", str(out_file), "--json")
    assert [o["flops"] for o in json.loads(out)] == [r["flops"] for r in records]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["complexity", "RegNetQ-4GF"], "unknown model"),
        (["sample", "--space", "regnety", "--regime", "4XF"], "not a quantity"),
        (["sample", "--space", "resnet", "--regime", "4GF"], "regnetx"),
        (["sample", "--space", "regnetx", "--regime", "1MF", "-n", "1"], "draws"),
        (["complexity", "RegNetY-4.0GF", "--resolution", "0"], "resolution"),
        (["complexity"], "SPEC"),
        (["export", "RegNetY-4.0GF", "--format", "caffe"], "pycls"),
        (["export", "RegNetY-4.0GF", "--format", "onnx"], "--out FILE"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("fastscale: error:") and needle in err


def test_console_script_exit_code_and_no_torch_on_the_complexity_path():
    code = "import sys; from trials.cli import main; rc = main(['complexity', 'RegNetY-4.0GF']); assert rc == 0; bad = [m for m in ('torch', 'ray', 'optuna', 'pandas') if m in sys.modules]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    proc = subprocess.run(
        [sys.executable, "-m", "trials", "complexity", "nope"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_spec_file_with_bad_field_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"family": "regnet", "block": "Y", "depth": 22, "w0": 97, "wa": 31.41, "wm": 2.24, "group_width": 64}'
    )
    code, _, err = run(capsys, "complexity", str(bad))
    assert code == 2 and "multiple of 8" in err and err.count("\n") == 1
