"""Submit a whole study to a Ray cluster through Ray Jobs, and follow it.

The job's entrypoint is the same `fastscale study run ...` command, built as an argv list and
quoted with shlex.join (never a shell string assembled from user text). Inside the job Ray
sets RAY_ADDRESS, so the study attaches to that cluster instead of starting its own Ray.
"""

from __future__ import annotations

import shlex

from spaces.io import first_line
from trials.study.checkpoint_storage import redact
from trials.study.runner import probe
from trials.study.store import StudyError

ENTRYPOINT = ("fastscale", "study", "run")


def run_argv(options: dict) -> list[str]:
    """argv of `fastscale study run` from option name -> value (None and False are left out).

    A True flag becomes `--name`; every other value is one `--name VALUE` pair (one-letter
    names are short options: n -> -n).
    """
    argv = list(ENTRYPOINT)
    for name, value in options.items():
        if value is None or value is False:
            continue
        if name in ("storage", "checkpoint_storage"):
            value = redact(str(value))  # the job's nodes take the secret from their env
        flag = f"-{name}" if len(name) == 1 else "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv


def entrypoint(options: dict) -> str:
    return shlex.join(run_argv(options))


def client(address: str):
    """A JobSubmissionClient for the dashboard at `address`, after a quick reachability probe."""
    if not address.startswith(("http://", "https://")):
        raise StudyError(
            f"--address {address!r} must be the Ray dashboard URL, e.g. http://HEAD:8265"
        )
    probe(address)
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as exc:
        first = first_line(exc)
        raise StudyError(f"cannot use Ray Jobs at {address}: {first}") from None


def submit(address: str, options: dict, study_dir: str, retry_s: float = 60) -> str:
    """Submit; a head whose job agent is still starting ("try again later") gets retried."""
    import time

    c = client(address)
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return c.submit_job(
                entrypoint=entrypoint(options), metadata={"fastscale_study": study_dir}
            )
        except Exception as exc:
            first = first_line(exc)
            if "try again later" in first and time.monotonic() < deadline:
                time.sleep(2)
                continue
            raise StudyError(f"Ray Jobs refused the study: {first}") from None


def status(address: str, job_id: str) -> dict:
    c = client(address)
    try:
        info = c.get_job_info(job_id)
    except Exception as exc:
        first = first_line(exc)
        raise StudyError(f"no job {job_id!r} at {address}: {first}") from None
    return {
        "job_id": job_id,
        "status": str(getattr(info.status, "value", info.status)),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": _iso(info.start_time),
        "end_time": _iso(info.end_time),
        "study": (info.metadata or {}).get("fastscale_study"),
    }


def _iso(ms: int | None) -> str | None:
    import datetime as dt

    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds") if ms else None
    )


def logs(address: str, job_id: str, follow: bool = False, echo=print) -> None:
    import logging

    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)
    c = client(address)
    try:
        if not follow:
            echo(c.get_job_logs(job_id), end="")
            return
        import asyncio

        async def tail():
            async for chunk in c.tail_job_logs(job_id):
                echo(chunk, end="")

        asyncio.run(tail())
    except StudyError:
        raise
    except Exception as exc:
        first = first_line(exc)
        raise StudyError(f"cannot read logs of job {job_id!r} at {address}: {first}") from None
