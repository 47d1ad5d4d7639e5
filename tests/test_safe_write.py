"""Whatever sits at `--out`: only regular files are replaced, atomically, with the umask's
mode; devices, FIFOs, directories and symlinks are refused with one line and left as they
were; names never lead outside their directory (spaces.safe_write, docs/outputs.md)."""

import contextlib
import os
import stat
from pathlib import Path

import pytest

from spaces.safe_write import OutputError, check_target, open_for_write, prepare_dir, write_file
from trials.cli import main

SAMPLE = ["sample", "--space", "regnetx", "--regime", "200MF", "-n", "2"]
SCALE = ["scale", "RegNetX-200MF", "--factor", "2", "--strategy", "dWr"]
PLAN = ["plan", "RegNetY-800MF", "--target", "3.2GF", "--alphas", "0.8", "--strategies", ""]
EXPORT = ["export", "RegNetX-200MF", "--format", "json"]
CALIBRATE = ["calibrate", "RegNetX-200MF", "-r", "16", "--factors", "1,2", "--repeats", "1",
             "--rounds", "1", "--max-warmup", "0"]  # fmt: skip
PROFILE_CSV = "model,time\nRegNetY-400MF,1.0\nRegNetY-800MF,1.7\nRegNetY-1.6GF,3.1\n"


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def one_line_error(capsys, code, needle):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastscale: error:"), err
    assert needle in lines[0] and "Traceback" not in err


def file_commands(tmp_path):
    """Every command that writes one file at --out: (argv without --out, target name)."""
    csv = tmp_path / "t.csv"
    csv.write_text(PROFILE_CSV)
    return {
        "sample": SAMPLE,
        "scale": SCALE,
        "export": EXPORT,
        "profile fit": ["profile", "fit", str(csv), "--unit", "ms"],
    }


def hazards(tmp_path):
    """Non-regular targets, each with a way to check it is unchanged afterwards."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    out = {
        "fifo": (fifo, lambda: stat.S_ISFIFO(os.lstat(fifo).st_mode)),
        "symlink": (link, lambda: link.is_symlink() and victim.read_text() == "keep me"),
        "directory": (folder, lambda: folder.is_dir()),
    }
    if os.geteuid() == 0:  # a char device like /dev/full, made here so nothing real is at risk
        device = tmp_path / "full"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        out["device"] = (device, lambda: stat.S_ISCHR(os.lstat(device).st_mode))
    return out


@pytest.mark.parametrize("command", ["sample", "scale", "export", "profile fit", "calibrate"])
def test_every_out_refuses_non_regular_targets_and_leaves_them(capsys, tmp_path, command):
    # calibrate refuses before its (long) timing, so it is only checked here
    argv = {**file_commands(tmp_path), "calibrate": CALIBRATE}[command]
    root = tmp_path / "h"
    root.mkdir()
    for kind, (target, unchanged) in hazards(root).items():
        code = main([*argv, "--out", str(target)])
        one_line_error(capsys, code, "directory" if kind == "directory" else "refusing to write")
        assert unchanged(), (command, kind)
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]  # no temp file left


def test_plan_out_dir_refuses_a_symlinked_plan_file(capsys, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "01-alpha0.8.json").symlink_to(victim)
    one_line_error(capsys, main([*PLAN, "--out-dir", str(out)]), "symbolic link")
    assert victim.read_text() == "keep me" and (out / "01-alpha0.8.json").is_symlink()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    one_line_error(capsys, main([*PLAN, "--out-dir", str(fifo)]), "not a directory")


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_files_follow_the_umask_for_every_command(capsys, tmp_path, mask):
    expected = 0o666 & ~mask
    with umask(mask):
        for name, argv in file_commands(tmp_path).items():
            target = tmp_path / f"{name.replace(' ', '-')}.json"
            assert main([*argv, "--out", str(target)]) == 0, capsys.readouterr().err
            assert stat.S_IMODE(target.stat().st_mode) == expected, name
        assert main([*PLAN, "--out-dir", str(tmp_path / "plans")]) == 0
        for plan in (tmp_path / "plans").iterdir():
            assert stat.S_IMODE(plan.stat().st_mode) == expected
        # replacing an existing 0600 file gives the umask's mode too
        old = tmp_path / "old.json"
        old.write_text("{}")
        old.chmod(0o600)
        assert main([*SAMPLE, "--out", str(old)]) == 0
        assert stat.S_IMODE(old.stat().st_mode) == expected
    capsys.readouterr()


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "spec.json"
    target.write_text("old")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), open_for_write(target, text=True) as fh:
        fh.write("half")
        raise Boom
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
    write_file(target, "new")
    assert target.read_text() == "new" and sorted(tmp_path.iterdir()) == [target]


def test_check_target_allows_absent_and_regular_and_follows_parent_links(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)  # a link in the parent path is fine
    write_file(tmp_path / "alias" / "x.json", "{}")
    assert (real / "x.json").read_text() == "{}"
    assert check_target(tmp_path / "absent") == tmp_path / "absent"
    longest = tmp_path / ("n" * 250 + ".json")  # its temporary name is cut to fit NAME_MAX
    write_file(longest, "{}")
    assert longest.read_text() == "{}"
    with pytest.raises(OutputError, match="directory"):
        write_file(real, "x")


def test_write_probe_never_follows_a_planted_symlink(tmp_path):
    """The old probe wrote `.write-test-<pid>` with a plain open: a link planted there made
    it truncate the file the link points to."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "run"
    out.mkdir()
    for name in (f".write-test-{os.getpid()}", ".write-test"):
        (out / name).symlink_to(victim)
    prepare_dir(out)
    assert victim.read_text() == "keep me"
    assert (out / f".write-test-{os.getpid()}").is_symlink()  # nothing of ours replaced it


def test_preset_name_cannot_leave_runs(capsys, tmp_path, monkeypatch):
    deep = tmp_path / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    preset = tmp_path / "evil.yaml"
    quick = Path(__file__).parents[1] / "trials" / "compare" / "presets" / "cpu-quick.yaml"
    preset.write_text(quick.read_text().replace("name: cpu-quick", "name: ../../../../x"))
    code = main(["compare", "--preset", str(preset)])
    one_line_error(capsys, code, "preset name")
    assert not (tmp_path / "x").exists() and not (deep / "runs").exists()
