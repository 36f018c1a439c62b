"""What is served and where, and `tunesvc plan`, with latencies given to it (no model is
loaded or measured here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import tunesvc
from tunesvc.errors import UserError
from tunesvc.serving.config_file import read_config, served_models
from tunesvc.serving.placement import place
from tunesvc.serving.plan import ShareLatency, make_plan, max_rate, predicted_p99_ms
from tunesvc.serving.spec import Objective, ServedModel, parse_argument


def test_arguments_name_models_and_their_shares() -> None:
    assert parse_argument("zoo:resnet18@50") == ServedModel("resnet18", "zoo:resnet18", 50)
    assert parse_argument("det=/m/det.onnx@100").name == "det"
    assert parse_argument("/m/text-det.onnx@25").name == "text-det"
    for bad in ("zoo:resnet18", "zoo:resnet18@", "zoo:resnet18@0", "@50", "zoo:x@150"):
        with pytest.raises(UserError):
            parse_argument(bad)


def test_shapes_say_which_model_when_several() -> None:
    with pytest.raises(UserError, match="MODEL/NAME"):
        served_models(("a=zoo:mlp@50", "b=zoo:mlp@50"), None, "cpu", ("input:4x64",), None)
    chosen, _ = served_models(("a=zoo:mlp@50", "b=zoo:mlp@50"), None, "cpu",
                              ("b/input:4x64",), None)
    assert [m.input_shapes for m in chosen] == [{}, {"input": (4, 64)}]


def test_controlled_placement_gives_disjoint_cores_and_refuses_too_much() -> None:
    models = [ServedModel("a", "zoo:mlp", 50), ServedModel("b", "zoo:mlp", 25, replicas=2)]
    slots = place(models, "cpu", available=(4, 5, 6, 7))
    assert [s.cores for s in slots] == [(4, 5), (6,), (7,)]
    with pytest.raises(UserError, match="--overlap"):
        place([ServedModel("a", "zoo:mlp", 100), ServedModel("b", "zoo:mlp", 100)], "cpu",
              available=(0, 1))
    shared = place([ServedModel("a", "zoo:mlp", 100), ServedModel("b", "zoo:mlp", 100)], "cpu",
                   overlap=True, available=(0, 1))
    assert [s.cores for s in shared] == [(0, 1), (0, 1)]


def test_config_file_errors_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("models:\n  - model: zoo:mlp\n    share: 50\n    replica: 2\n")
    with pytest.raises(UserError, match=r"models\[0\]: unknown key\(s\) replica"):
        read_config(config)
    config.write_text("models: [\n")
    with pytest.raises(UserError, match="is not valid yaml"):
        read_config(config)
    toml = tmp_path / "serve.toml"
    toml.write_text('[[models]]\nmodel = "zoo:mlp"\nshare = 50\n'
                    'objective = {p99_ms = 5, rate = 100}\n')
    assert read_config(toml).models[0].objective == Objective(5.0, 100.0)


def test_queue_model_grows_with_load_and_replicas_help() -> None:
    latency = ShareLatency(50, median_ms=10.0, p99_ms=12.0)
    assert predicted_p99_ms(latency, 1, 1.0) == pytest.approx(12.0, abs=0.5)
    assert predicted_p99_ms(latency, 1, 50.0) > predicted_p99_ms(latency, 1, 10.0)
    assert predicted_p99_ms(latency, 1, 100.0) == float("inf")
    assert max_rate(latency, 2, 30.0) > 1.5 * max_rate(latency, 1, 30.0)
    assert max_rate(latency, 1, 11.0) == 0.0


def _two_models(resnet: Objective, mobilenet: Objective) -> list[ServedModel]:
    return [ServedModel("resnet18", "zoo:resnet18", 100, objective=resnet),
            ServedModel("mobilenet_v2", "zoo:mobilenet_v2", 100, objective=mobilenet)]


LATENCIES = {"resnet18": [ShareLatency(50, 25.0, 27.0), ShareLatency(100, 13.0, 16.0)],
             "mobilenet_v2": [ShareLatency(50, 10.0, 11.0), ShareLatency(100, 6.5, 8.0)]}


def test_plan_fits_both_on_the_cores_with_most_room() -> None:
    plan = make_plan(_two_models(Objective(100, 15), Objective(40, 30)), LATENCIES, 2, lambda p: p // 50)
    assert [(o.model.name, o.share, o.replicas) for o in plan.options] == [
        ("resnet18", 50, 1), ("mobilenet_v2", 50, 1)]
    assert plan.room >= 1 and not plan.problems


def test_plan_names_the_objective_it_cannot_meet() -> None:
    plan = make_plan(_two_models(Objective(20, 15), Objective(40, 30)), LATENCIES, 2, lambda p: p // 50)
    assert not plan.options
    assert len(plan.problems) == 1 and plan.problems[0].startswith("resnet18: p99 <= 20 ms")
    crowded = make_plan(_two_models(Objective(100, 50), Objective(40, 30)), LATENCIES, 2,
                        lambda p: p // 50)
    assert crowded.problems and "together the objectives need 3 cores" in crowded.problems[0]


def test_plan_command_writes_a_config_serve_reads(tmp_path: Path, tunesvc_env) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "serve.yaml"
    given = [arg for name, lats in LATENCIES.items() for lat in lats
             for arg in ("--latency", f"{name}@{lat.share}:{lat.median_ms}:{lat.p99_ms}")]
    done = tunesvc("plan", "zoo:resnet18", "zoo:mobilenet_v2", "--objective", "resnet18:100@15",
                   "--objective", "mobilenet_v2:40@30", *given, "--no-measure", "-o", str(out),
                   env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    assert [(m.name, m.share) for m in read_config(out).models] == [("resnet18", 50),
                                                                    ("mobilenet_v2", 50)]
    tight = tmp_path / "tight.yaml"
    failed = tunesvc("plan", "zoo:resnet18", "zoo:mobilenet_v2", "--objective", "resnet18:20@15",
                     *given, "--no-measure", "-o", str(tight), env=tunesvc_env)
    assert failed.returncode == 1 and not tight.exists()
    assert failed.stderr.strip().count("\n") == 0 and "resnet18: p99 <= 20 ms" in failed.stderr
