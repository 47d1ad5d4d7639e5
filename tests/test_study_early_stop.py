"""Early stopping of study candidates (trials.study.early_stop) on the shared two-node Ray
cluster (tests/fixtures_ray.py): Ray Tune's ASHA, Optuna pruners on a TPE study, the
`stopped` record, resumes that never retrain a stopped candidate, and one-line refusals of
bad flags. Tiny real models on a real Fashion-MNIST slice, two epochs, real SQLite."""

from __future__ import annotations

import json

import pytest

from trials.cli import main
from trials.cli.study_show import summary
from trials.study import Candidate, StudyStore, load_results, run_study
from trials.study.checkpoint_storage import STATE, checkpoints, has_file
from trials.study.early_stop import EarlyStop

from .extras import require
from .test_study_ray import TINY, snapshot, tiny_config, tiny_specs

pytestmark = pytest.mark.slow
TWO_EPOCHS = {"epochs": 2, "val_size": 512}  # 512: distinct errors between two models


def epoch_errors(store: StudyStore, key: str) -> dict[int, float]:
    """{epoch: validation error} as the driver logged each epoch result of the candidate."""
    out = {}
    for line in store.log_path(key).read_text().splitlines():
        _, _, text = line.partition(" ")
        if text.startswith("epoch {"):
            record = json.loads(text[len("epoch ") :])
            out[int(record["epoch"])] = float(record["error"])
    return out


def test_asha_stops_the_trailing_candidate_and_a_resume_keeps_it(ray_cluster, tmp_path, capsys):
    """One trial at a time, grace 1: the second candidate is judged at epoch 1 against the
    first alone, so ASHA stops it exactly when its epoch-1 error is the higher one. Run in
    both orders, the worse model is stopped in one of them (training is deterministic)."""
    first, second = tiny_specs(2, seed=11)
    asha = EarlyStop("asha", grace_epochs=1, reduction_factor=2)
    seen = {}
    for name, order in (("ab", [first, second]), ("ba", [second, first])):
        out = tmp_path / name
        cands = [Candidate(s, {"order": name}) for s in order]
        df = run_study(
            out, cands, tiny_config(**TWO_EPOCHS), early_stop=asha, max_concurrent=1, progress=False
        )
        store = StudyStore(out)
        lead, trail = (df.iloc[i] for i in range(2))
        lead_err, trail_err = (epoch_errors(store, r["key"])[1] for r in (lead, trail))
        assert lead_err != trail_err, "two models with equal epoch-1 errors: pick others"
        assert lead["status"] == "done" and lead["epochs_done"] == 2  # nobody to compare with
        assert trail["status"] == ("stopped" if trail_err > lead_err else "done")
        for _, row in df[df["status"] == "stopped"].iterrows():
            rec = store.status(row["key"])
            assert rec["stopped_by"] == "asha" and rec["epochs_done"] == 1 and rec["attempts"] == 1
            assert rec["error"] == pytest.approx(trail_err)  # its error at epoch 1
            assert rec["checkpoint"] is None  # its resumable state is deleted: never resumed
            assert not any(has_file(c, STATE) for c in checkpoints(rec["trial"]))
            assert row["stopped_by"] == "asha" and row["error"] == pytest.approx(trail_err)
        seen[name] = {
            r["key"]: (r["status"], epoch_errors(store, r["key"])[1]) for _, r in df.iterrows()
        }
        before = snapshot(store, store.keys())
        again = run_study(out, cands, tiny_config(**TWO_EPOCHS), early_stop=asha, progress=False)
        assert snapshot(store, store.keys()) == before  # a stopped candidate is not retrained
        assert list(again["status"]) == list(df["status"])
    errors = {name: {k: e for k, (_, e) in rows.items()} for name, rows in seen.items()}
    assert errors["ab"] == errors["ba"]  # seeded, fixed threads: the same errors either way
    stopped = [s for rows in seen.values() for s, _ in rows.values() if s == "stopped"]
    assert len(stopped) == 1

    out = tmp_path / ("ab" if any(s == "stopped" for s, _ in seen["ab"].values()) else "ba")
    assert main(["study", "show", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["stopped"] for r in rows if r["status"] == "stopped"] == ["asha @1/2"]
    assert "1 stopped early (error at that epoch)" in summary(load_results(out))


def test_an_optuna_pruner_stops_every_trial_and_optuna_hears_pruned(ray_cluster, tmp_path, capsys):
    """ThresholdPruner(upper=-1) prunes any error at its first report (epoch 1 of 2)."""
    import optuna

    from trials.study.define import run_defined

    out = tmp_path / "tpe"
    opts = {"space": "regnetx", "regime": 5_000_000, "n": 2, "sampler": "tpe", "epochs": 2}
    opts.update(resolution=16, train_size=128, val_size=128, batch_size=64)
    opts["pruner"] = optuna.pruners.ThresholdPruner(upper=-1.0)
    run_defined(out, opts, progress=False)
    store = StudyStore(out)
    records = [store.status(k) for k in store.keys()]
    assert len(records) == 2
    assert all(r["status"] == "stopped" and r["epochs_done"] == 1 for r in records)
    assert {r["stopped_by"] for r in records} == {"ThresholdPruner"}
    definition = json.loads((out / "study.json").read_text())["definition"]
    assert definition["early_stop"]["pruner"] == "ThresholdPruner"
    study = optuna.load_study(study_name=definition["optuna_study"], storage=store.optuna_url)
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert len(pruned) == len(study.trials) >= 2
    by_key = {k: store.status(k)["error"] for k in store.keys()}
    for t in pruned:  # the pruned value is the epoch-1 error the pruner judged
        assert t.intermediate_values == {1: pytest.approx(by_key[t.user_attrs["key"]])}

    before = snapshot(store, store.keys())
    run_defined(out, {"pruner": optuna.pruners.ThresholdPruner(upper=-1.0)}, progress=False)
    assert snapshot(store, store.keys()) == before  # nothing retrained, nothing asked
    again = optuna.load_study(study_name=study.study_name, storage=store.optuna_url)
    assert len(again.trials) == len(study.trials)
    assert main(["study", "run", "--out", str(out)]) == 2  # the API's pruner is needed again
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Python API" in err


def test_cli_median_pruner_reports_epochs_to_optuna_and_resume_flags_must_agree(
    ray_cluster, tmp_path, capsys
):
    import optuna

    out = tmp_path / "median"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", "-n", "2", "--sampler", "tpe"]
    args += ["--pruner", "median", *TINY, "--epochs", "2", "--out", str(out), "--json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    # Optuna's median pruner waits for 5 trials: with 2 it judges but never prunes
    assert [r["status"] for r in rows] == ["done", "done"]
    definition = json.loads((out / "study.json").read_text())["definition"]
    assert definition["early_stop"] == {
        "scheduler": "fifo",
        "pruner": "median",
        "grace_epochs": 1,
        "reduction_factor": None,
    }
    study = optuna.load_study(
        study_name=definition["optuna_study"], storage=f"sqlite:///{out}/optuna.db"
    )
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 2 and all(set(t.intermediate_values) == {1} for t in done)
    for flags, says in (
        (["--pruner", "none"], "--pruner none conflicts"),
        (["--scheduler", "asha"], "--scheduler asha conflicts"),
        (["--grace-epochs", "1"], None),
    ):
        code = main(["study", "run", "--out", str(out), *flags, "--json"])
        captured = capsys.readouterr()
        if says is None:  # agrees with the stored definition: a no-op resume
            assert code == 0 and len(json.loads(captured.out)) == 2
        else:
            assert code == 2 and captured.err.count("\n") == 1 and says in captured.err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--scheduler", "hyperband"], "'hyperband' is not one of 'fifo', 'asha'"),
        (["--pruner", "percentile"], "--pruner"),
        (["--scheduler", "asha", "--pruner", "median", "--sampler", "tpe"], "not both"),
        (["--pruner", "median"], "needs --sampler tpe"),
        (["--pruner", "hyperband", "--sampler", "nsga2"], "needs --sampler tpe"),
        (["--scheduler", "asha"], "--grace-epochs 1 must be below --epochs 1"),
        (["--scheduler", "asha", "--epochs", "3", "--grace-epochs", "3"], "must be below"),
        (["--grace-epochs", "2", "--epochs", "3"], "applies with --scheduler asha"),
        (["--scheduler", "asha", "--epochs", "3", "--reduction-factor", "1"], "2<=x<=1000"),
        (["--pruner", "median", "--sampler", "tpe", "--epochs", "3", "--reduction-factor", "3"],
         "applies to asha, hyperband"),
        (["--scheduler", "asha", "--epochs", "3", "--grace-epochs", "0"], "x>=1"),
    ],
)  # fmt: skip
def test_bad_early_stop_flags_are_one_line_and_write_nothing(tmp_path, capsys, flags, says):
    out = tmp_path / "s"
    args = ["study", "run", "--space", "regnetx", "--regime", "5MF", *flags, "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastscale: error: ") and err.count("\n") == 1 and says in err, err
    assert not out.exists()


def test_epoch_metrics_reach_mlflow_when_installed(ray_cluster, tmp_path, monkeypatch):
    require("mlflow")
    from mlflow.tracking import MlflowClient

    from trials.study.mlflow_log import KEY_TAG, tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = tiny_specs(1, seed=7)[0]
    df = run_study(tmp_path, [Candidate(spec)], tiny_config(epochs=2), progress=False)
    key = df["key"].iloc[0]
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert (tmp_path / "mlflow.db").is_file()
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    experiment = client.get_experiment_by_name(str(tmp_path.resolve()))
    # its artifact root is in the study directory, not in whatever the working directory was
    assert experiment.artifact_location == (tmp_path.resolve() / "mlruns").as_uri()
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags[KEY_TAG] == key and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val_error")
    assert [m.step for m in history] == [1, 2]
    assert min(m.value for m in history) == pytest.approx(df["error"].iloc[0], abs=1e-6)
    # without --keep-weights a finished candidate keeps only its record, no weights
    # (tests/test_study_flags.py runs one with it)
    assert StudyStore(tmp_path).status(key)["checkpoint"] is None


def test_a_broken_mlflow_store_leaves_the_study_running_with_one_warning(
    ray_cluster, tmp_path, monkeypatch, capfd
):
    """docs/studies.md: MLflow trouble never stops a study. A tracking URI whose SQLite file
    lies under a regular file cannot be opened: both candidates still train both epochs and
    get their records, and stderr carries exactly one `MLflow logging stopped` line."""
    require("mlflow")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/mlflow.db")
    out = tmp_path / "study"
    specs = tiny_specs(2, seed=7)
    df = run_study(out, [Candidate(s) for s in specs], tiny_config(epochs=2), progress=False)
    assert sorted(df["status"]) == ["done", "done"]
    assert sorted(df["epochs_done"]) == [2, 2] and df["error"].notna().all()
    err = capfd.readouterr().err
    assert err.count("fastscale: MLflow logging stopped: ") == 1, err
    assert blocker.read_text() == ""  # nothing was written through the broken URI


def test_the_live_view_and_the_report_say_what_was_stopped_early():
    import io

    from trials.compare.report import analyze
    from trials.study.live_view import StudyView

    from .test_report import make_results

    stream = io.StringIO()
    view = StudyView(2, enabled=True, stream=stream)
    record = {"status": "stopped", "stopped_by": "asha", "epochs_done": 1, "error": 0.5}
    view.finish("k1", "X d1", {**record, "attempts": 1}, final=True)
    view.close()
    assert "stopped early by ASHA after epoch 1: val error 0.5000" in stream.getvalue()
    assert view.done == 1 and view.stopped == 1 and "1 stopped early" in view._header()

    df = make_results()
    df["status"] = "done"
    df["stopped_by"] = None
    searched = df.index[(df["method"] == "search") & (df["error"] > 0.11)][:2]
    df.loc[searched, "status"] = "stopped"
    df.loc[searched, "stopped_by"] = "asha"
    df.loc[searched, "error"] = 0.001  # an epoch-1 error must never win a ranking
    analysis = analyze(df)
    assert analysis["n_stopped"] == 2
    assert analysis["sentences"][-1].startswith("2 candidates stopped early by ASHA; ")
    assert "not fully trained errors" in analysis["sentences"][-1]
    assert all(r["error"] != 0.001 for r in analysis["rows"])
    assert min(v["winner_error"] for v in analysis["verdict"]) > 0.001


def test_compare_stores_its_scheduler_and_a_resume_must_agree(tmp_path, capsys):
    from trials.compare.preset import PresetError, parse_preset
    from trials.compare.run import study_early_stop

    from .test_compare import tiny

    out = tmp_path / "cmp"
    asha = EarlyStop("asha", grace_epochs=1, reduction_factor=3)
    assert study_early_stop(out, asha, epochs=2) == asha
    stored = json.loads((out / "study.json").read_text())["definition"]
    assert stored == {"source": "api", "early_stop": asha.to_dict()}
    assert study_early_stop(out, None, epochs=2) == asha  # a resume keeps it
    code = main(["compare", "--preset", "cpu-quick", "--out", str(out), "--scheduler", "fifo"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "conflicts with the comparison" in err
    assert study_early_stop(tmp_path / "new", None, epochs=1) == EarlyStop()

    preset = parse_preset(
        tiny(train={"epochs": 2}, early_stop={"scheduler": "asha", "grace_epochs": 1}), "t"
    )
    assert preset.early_stop == {**asha.to_dict(), "reduction_factor": 3}
    assert preset.to_dict()["early_stop"]["scheduler"] == "asha"
    for bad, says in (
        ({"scheduler": "bogus"}, "--scheduler 'bogus' is unknown"),
        ({"pruner": "median"}, "early_stop: unknown field 'pruner'; allowed: scheduler"),
        ({"scheduler": "asha"}, "must be below --epochs 1"),
    ):
        with pytest.raises(PresetError, match=says):
            parse_preset(tiny(early_stop=bad), "t")


def test_each_pruner_name_builds_its_optuna_pruner_with_the_study_settings():
    import optuna

    from trials.study.early_stop import PRUNERS, optuna_pruner, settings

    kinds = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    assert set(kinds) == set(PRUNERS) - {"none"}
    for name, kind in kinds.items():
        stop = settings(pruner=name, grace_epochs=2, epochs=9, sampler="tpe")
        assert isinstance(optuna_pruner(stop, 9), kind)
        assert EarlyStop.from_dict(stop.to_dict()) == stop  # as study.json stores it
        assert stop.describe().startswith(f"{name} (grace 2")
    assert optuna_pruner(settings(epochs=9, sampler="tpe"), 9) is None
