"""What `tunesvc tune` does when a choice is left out, and what `tunesvc submit` hands the
cluster job: the job's `tunesvc tune` must parse back to every choice the user made."""

from __future__ import annotations

from typing import Any

import pytest

from tunesvc.cli.cluster import forwarded_options
from tunesvc.cli.tune import tune
from tunesvc.tuning.request import TuneRequest


def _parsed(arguments: list[str]) -> dict[str, Any]:
    with tune.make_context("tune", ["zoo:mlp", *arguments]) as context:
        return dict(context.params)


def test_tuning_learns_from_the_database_unless_told_not_to() -> None:
    assert _parsed([])["warm"] is True
    assert _parsed(["--cold-model"])["warm"] is False
    assert TuneRequest.of("zoo:mlp", "cpu", "50", db="sqlite:///unused.sqlite").warm is True


@pytest.mark.parametrize("warm", [True, False])
@pytest.mark.parametrize("transfer", [True, False])
def test_a_submitted_job_tunes_as_asked(warm: bool, transfer: bool) -> None:
    options = forwarded_options("cpu", "50,100", 300, 24, "sqlite:///x.sqlite", fresh=True,
                                transfer=transfer, warm=warm)
    parsed = _parsed(options)
    assert (parsed["warm"], parsed["transfer"], parsed["fresh"]) == (warm, transfer, True)
    assert (parsed["shares"], parsed["total_trials"], parsed["trials_per_task"]) == \
        ("50,100", 300, 24)
    assert parsed["db_url"] == "sqlite:///x.sqlite"
