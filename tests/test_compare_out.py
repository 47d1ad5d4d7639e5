"""`compare --out DIR` into someone else's directory is refused before Ray, data or a study
start, in one line that says what to do."""

import json
import subprocess
import sys

PROBE = """
import sys
from trials.cli import main
code = main(["compare", "--preset", "cpu-quick", "--out", sys.argv[1]])
print(code, "ray" in sys.modules)
"""


def test_compare_refuses_a_foreign_directory_before_ray(tmp_path):
    out = tmp_path / "training-run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"not ours")
    (out / "result.json").write_text(json.dumps({"error": 0.1}))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr  # ray never imported
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fastscale: error:")
    assert "holds other files (checkpoint.pt, result.json) but no comparison" in err[0]
    assert "new or empty directory" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "result.json"]
