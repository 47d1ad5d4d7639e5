"""A checkpoint whose copy into storage was cut short (a kill mid-copy) is never resumed from:
the record names the state's size, and recovery falls back to the last whole checkpoint."""

import json

from trials.study import checkpoint_storage, records


def _checkpoint(trial, n, state: bytes, record: dict):
    path = trial / f"{checkpoint_storage.CHECKPOINT_PREFIX}{n:06d}"
    path.mkdir(parents=True)
    (path / checkpoint_storage.STATE).write_bytes(state)
    (path / checkpoint_storage.RECORD).write_text(json.dumps(record))
    return str(path)


def test_a_torn_state_is_skipped_for_the_last_whole_one(tmp_path):
    trial = tmp_path / "trial"
    whole = _checkpoint(trial, 0, b"x" * 100, {"status": "running", "epochs_done": 1,
                                                 "state_bytes": 100})  # fmt: skip
    torn = _checkpoint(trial, 1, b"x" * 40, {"status": "running", "epochs_done": 2,
                                               "state_bytes": 100})  # fmt: skip
    assert checkpoint_storage.state_complete(whole, checkpoint_storage.read_record(whole))
    assert not checkpoint_storage.state_complete(torn, checkpoint_storage.read_record(torn))
    assert records._newest(str(trial)) == (whole, checkpoint_storage.read_record(whole))
    assert records.resume_point({"checkpoint": torn}) is None
    assert records.resume_point({"checkpoint": whole}) == whole
    # an older record without the size: the file being there is enough; no record: unusable
    assert checkpoint_storage.state_complete(whole, {"status": "running"})
    assert not checkpoint_storage.state_complete(whole, None)
