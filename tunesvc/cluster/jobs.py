"""Tuning runs as Ray jobs on a cluster: submit, and follow by job id.

The job's entrypoint is an ordinary `tunesvc tune ...` command, so `ray job submit --
tunesvc tune ...` works the same way. Addresses follow Ray's convention: the dashboard's
http://HEAD:8265, from --address or RAY_ADDRESS.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from ray.job_submission import JobStatus, JobSubmissionClient

from tunesvc.cluster import connect
from tunesvc.errors import UserError, first_line
from tunesvc.models.spec import ModelSpec

ADDRESS_ENV = connect.ADDRESS_ENV


def client(address: str | None) -> JobSubmissionClient:
    found = connect.given(address)
    if found is None:
        raise UserError("no Ray cluster given: pass --address http://HEAD:8265 or set "
                        f"{ADDRESS_ENV}")
    connect.check_dashboard_address(*found)
    address = found[0]
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError from the client
        raise UserError(f"cannot reach the Ray dashboard at {address}: {first_line(exc)}") from None



def tune_entrypoint(model: ModelSpec, options: Iterable[str]) -> str:
    """The command a Ray job runs: `tunesvc tune` on the model as the user named it."""
    return shlex.join(["tunesvc", "tune", *model.argv(), *options])


def submit(address: str | None, entrypoint: str) -> str:
    return str(client(address).submit_job(entrypoint=entrypoint))


def _known_job(address: str | None, job_id: str) -> JobSubmissionClient:
    jobs = client(address)
    try:
        jobs.get_job_status(job_id)
    except Exception:
        raise UserError(f"the cluster has no job {job_id!r}") from None
    return jobs


def status(address: str | None, job_id: str) -> JobStatus:
    return _known_job(address, job_id).get_job_status(job_id)


def logs(address: str | None, job_id: str) -> str:
    return str(_known_job(address, job_id).get_job_logs(job_id))


def stop(address: str | None, job_id: str) -> bool:
    return bool(_known_job(address, job_id).stop_job(job_id))
