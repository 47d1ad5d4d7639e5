"""`fastscale train | time` end to end, and every bad input: one line, exit 2, nothing lost."""

import json

import pytest
import torch

from trials.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, needle):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastscale: error:"), err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


SMALL = ["--train-size", "100", "--val-size", "50", "-r", "16", "--batch-size", "25"]


def test_train_registry_name_json(capsys, tmp_path):
    code, out, err = _run(
        capsys,
        "train",
        "RegNetX-200MF",
        "--epochs",
        "2",
        *SMALL,
        "--threads",
        "1",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert [r["epoch"] for r in data["epochs"]] == [1, 2]
    assert 0 <= data["error"] <= 1 and data["error"] == min(r["error"] for r in data["epochs"])
    assert err.count("epoch ") == 2  # one progress line per epoch on stderr
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "result.json").exists()
    assert "nothing to train" not in err and "resuming" not in err
    first = json.loads((tmp_path / "result.json").read_text())
    code, out, err = _run(
        capsys,
        "train",
        "RegNetX-200MF",
        "--epochs",
        "2",
        *SMALL,
        "--threads",
        "1",
        "--out",
        str(tmp_path),
    )
    assert code == 0 and "best averaged-weights top-1" in out
    # resumed with nothing to train: no epoch trained (no per-epoch line), said so on
    # stderr, the same result printed and result.json untouched
    assert err == f"the checkpoint in {tmp_path} already holds all 2 epochs; nothing to train\n"
    assert f"error {data['error']:.4f} (best" in out
    assert json.loads((tmp_path / "result.json").read_text()) == first


def test_time_json_one_object_per_spec(capsys):
    code, out, _ = _run(
        capsys,
        "time",
        "RegNetX-200MF",
        "-r",
        "32",
        "--batch-size",
        "2",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--max-warmup",
        "0",
        "--rounds",
        "1",
        "--threads",
        "1",
        "--clock",
        "cpu",
        "--json",
    )
    assert code == 0
    one = json.loads(out)
    assert one["name"] == "RegNetX-200MF" and one["resolution"] == 32 and one["clock"] == "cpu"
    for key in ("flops", "params", "acts", "seconds_per_batch", "seconds_per_image", "spread"):
        assert one[key] >= 0
    code, out, err = _run(
        capsys,
        "time",
        "RegNetX-200MF",
        "RegNetY-200MF",
        "-r",
        "16",
        "--batch-size",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--max-warmup",
        "0",
        "--rounds",
        "1",
        "--mode",
        "infer",
        "--json",
    )
    both = json.loads(out)
    assert code == 0 and [r["name"] for r in both] == ["RegNetX-200MF", "RegNetY-200MF"]
    assert err.count("timed ") == 2
    code, out, _ = _run(
        capsys,
        "time",
        "RegNetX-200MF",
        "-r",
        "16",
        "--batch-size",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--max-warmup",
        "0",
        "--rounds",
        "1",
    )
    assert code == 0 and "ms/batch" in out


def test_missing_dataset_names_the_install_command(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTSCALE_FASHION_MNIST", str(tmp_path))
    code, _, err = _run(capsys, "train", "RegNetX-200MF", *SMALL)
    _one_line_error(code, err, "apt-get install -y dataset-fashion-mnist")
    code, _, err = _run(capsys, "train", "RegNetX-200MF", "--dataset", str(tmp_path / "no"))
    _one_line_error(code, err, "apt-get install -y dataset-fashion-mnist")


@pytest.mark.parametrize("command", ["train", "time", "calibrate"])
def test_bad_device_and_resolution(capsys, command, tmp_path):
    out = tmp_path / "p.json"
    extra = ["--out", str(out)] if command == "calibrate" else []
    code, _, err = _run(capsys, command, "RegNetX-200MF", "--device", "tpu", *extra)
    _one_line_error(code, err, "tpu")
    for bad in ("4", "0", "-32"):
        code, _, err = _run(capsys, command, "RegNetX-200MF", "--resolution", bad, *extra)
        _one_line_error(code, err, "resolution")
    code, _, err = _run(capsys, command, "NoSuchNet-1GF", *extra)
    _one_line_error(code, err, "NoSuchNet")
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", ["train", "time", "calibrate"])
def test_cuda_where_there_is_none(capsys, command, tmp_path):
    extra = {"train": SMALL, "time": [], "calibrate": ["--out", str(tmp_path / "p.json")]}
    extra = extra[command]
    code, _, err = _run(capsys, command, "RegNetX-200MF", "--device", "cuda", *extra)
    _one_line_error(code, err, "no CUDA")
    assert not (tmp_path / "p.json").exists()


def test_unwritable_output_and_foreign_checkpoint(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    code, _, err = _run(capsys, "train", "RegNetX-200MF", *SMALL, "--out", str(blocker / "run"))
    _one_line_error(code, err, "cannot write")
    assert blocker.read_text() == "keep me"
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, _, err = _run(capsys, "train", "RegNetX-200MF", *SMALL, "--out", str(run))
    _one_line_error(code, err, "checkpoint")
    assert (run / "checkpoint.pt").read_bytes() == b"not a checkpoint"
