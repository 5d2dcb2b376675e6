"""The real snakemake on the tiny config: what it builds, what a rerun redoes, how it fails."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from deploybench.gpu import nvidia_smi_sees_gpu
from deploybench.plan import NO_GPU_REASON

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"


def snakemake_command(workdir: Path, *args: str, configfile: Path | None = TINY) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *args,
        "--cores",
        "2",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
    ]
    return command + (["--configfile", str(configfile)] if configfile else [])


def snakemake(
    workdir: Path, *args: str, configfile: Path | None = TINY, check: bool = True, env=None
):
    command = snakemake_command(workdir, *args, configfile=configfile)
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, timeout=1800, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def workers_left(seconds: float = 60) -> list[int]:
    """The supervised backend processes still running once they had ``seconds`` to go (the
    kernel kills them with their job, asynchronously)."""
    deadline = time.monotonic() + seconds
    while (found := running_workers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def running_workers() -> list[int]:
    """Processes running deploybench's supervised backend worker."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"deploybench.worker" in command:
            found.append(int(entry.name))
    return found


def planned_outputs(dry_run_output: str) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for line in dry_run_output.splitlines()
        if line.strip().startswith("output:")
    ]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    result = snakemake(workdir, "report")
    return workdir, result


@pytest.mark.slow
def test_tiny_run_produces_report_and_a_row_per_combination(finished_run):
    workdir, _ = finished_run
    rows = list(csv.DictReader((workdir / "results" / "summary.csv").open()))
    config = yaml.safe_load(TINY.read_text())
    # the tiny file replaces the default experiment: its one model, none of the defaults
    assert {r["model"] for r in rows} == set(config["models"])
    triples = {(r["backend"], r["precision"]) for r in rows}
    assert triples == {(b, p) for b in config["backends"] for p in config["precisions"]}
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok, "nothing ran"
    for row in ok:
        assert (
            float(row["median_ci_low_ms"])
            <= float(row["median_ms"])
            <= float(row["median_ci_high_ms"])
        )
        assert float(row["p99_ms"]) >= float(row["median_ms"]) > 0
        assert int(float(row["threads"])) == 2
        assert row["parity_verdict"] in {"pass", "fail", "inconclusive"}
        assert row["version"] and row["compile_status"] == "ok"
    skipped = {
        (r["backend"], r["precision"]): r["reason"] for r in rows if r["status"] == "skipped"
    }
    assert "does not offer bf16" in skipped[("onnxruntime", "bf16")]
    # TVM: tuned (here: untuned) static graphs ran; the free-batch graph and int8 say why not
    tvm_rows = {(r["precision"], r["shape"]): r for r in rows if r["backend"] == "tvm"}
    assert {tvm_rows[("fp32", s)]["status"] for s in ("static_b1", "static_b2")} == {"ok"}
    assert "static shapes only" in tvm_rows[("fp32", "dynamic")]["reason"]
    assert "convolves in fp32" in tvm_rows[("int8", "static_b1")]["reason"]
    # every configuration that ran was also timed side by side, in every round
    rounds = yaml.safe_load(TINY.read_text())["comparison"]["rounds"]
    assert all(r["cmp_status"] == "ok" and int(float(r["cmp_rounds"])) == rounds for r in ok)
    baseline = [r for r in ok if r["backend"] == "pytorch" and r["precision"] == "fp32"]
    assert {float(r["cmp_speedup"]) for r in baseline} == {1.0}
    others = [r for r in ok if r["backend"] not in ("pytorch", "pytorch_cuda")]
    assert others and all(r["cmp_baseline"] == "pytorch fp32" for r in others)
    for row in others:
        # a configuration is never its own baseline, and its CI brackets its speedup
        assert float(row["cmp_speedup"]) != 1.0
        low, high = float(row["cmp_speedup_ci_low"]), float(row["cmp_speedup_ci_high"])
        assert low <= float(row["cmp_speedup"]) <= high
    comparison = json.loads(
        (workdir / "results" / "comparisons" / "tiny" / "cpu" / "b1.json").read_text()
    )
    assert comparison["kind"] == "comparison" and comparison["baseline"] == "pytorch fp32"
    assert comparison["allocation"] == {"scheduler": "local", "exclusive": None}
    # a GPU backend in the experiment: on a host without a GPU, skipped with the reason
    if not nvidia_smi_sees_gpu():
        gpu_rows = [r for r in rows if r["backend"] == "pytorch_cuda"]
        assert gpu_rows and {(r["status"], r["reason"]) for r in gpu_rows} == {
            ("skipped", NO_GPU_REASON)
        }

    timing = json.loads(next((workdir / "results" / "timings").rglob("b1.json")).read_text())
    assert timing["kind"] == "timing"
    assert len(timing["latencies_ms"]) == timing["stats"]["n"] >= 5
    assert timing["cold_ms"] > 0 and timing["load_average_before"] is not None

    html = (workdir / "reports" / "report.html").read_text()
    assert "<b>Random weights</b>" in html and "never its accuracy" in html
    assert "Failures and skips" in html and "does not offer bf16" in html
    assert "TVM tuning (MetaSchedule)" in html
    assert "Hardware the measurements ran on" in html
    assert nvidia_smi_sees_gpu() or NO_GPU_REASON.split(" (")[0] in html
    tuning = json.loads((workdir / "results/tuning/tiny/tvm/tuning.json").read_text())
    assert tuning["status"] == "ok" and tuning["trials"] == 0 and tuning["tasks"]
    assert html.count("data:image/png;base64,") >= 2  # figures are inlined
    assert "http://" not in html and "https://" not in html  # nothing fetched at view time
    # no half-written files left behind
    assert not [p for p in (workdir / "results").rglob("*.tmp")]


@pytest.mark.slow
def test_noop_rerun_does_nothing(finished_run):
    workdir, _ = finished_run
    result = snakemake(workdir, "report", "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_reordered_config_reruns_nothing(finished_run, tmp_path):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    reordered = {key: config[key] for key in reversed(list(config))}
    reordered["timing"] = {key: config["timing"][key] for key in sorted(config["timing"])}
    path = tmp_path / "reordered.yaml"
    path.write_text(yaml.safe_dump(reordered, sort_keys=False))
    result = snakemake(workdir, "report", "-n", configfile=path)
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_changing_one_backend_option_reruns_only_that_backend(finished_run, tmp_path):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    config["backend_options"] = {"onnxruntime": {"graph_optimization": "basic"}}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = planned_outputs(snakemake(workdir, "report", "-n", configfile=changed).stdout)
    stage_outputs = [o for o in outputs if "/compiled/" in o or "/timings/" in o or "/parity/" in o]
    assert stage_outputs, "the option change reran nothing"
    assert all("/onnxruntime/" in o for o in stage_outputs), stage_outputs
    assert not [o for o in outputs if "/onnx/" in o and "/onnxruntime/" not in o or "/models/" in o]
    assert any("summary.csv" in o for o in outputs) and any("report.html" in o for o in outputs)
    # the comparisons that hold an onnxruntime configuration: the tiny model's, both batches
    comparisons = sorted(o for o in outputs if "/comparisons/" in o)
    assert comparisons == [
        "results/comparisons/tiny/cpu/b1.json",
        "results/comparisons/tiny/cpu/b2.json",
    ]


@pytest.mark.slow
def test_changing_a_models_tuning_budget_retunes_and_recompiles_only_its_tvm_configs(
    finished_run, tmp_path
):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    config["tuning"]["tvm"]["models"] = {"tiny": {"trials_per_task": 1}}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = planned_outputs(snakemake(workdir, "report", "-n", configfile=changed).stdout)
    assert "results/tuning/tiny/tvm" in outputs
    stage_outputs = [o for o in outputs if "/compiled/" in o or "/timings/" in o or "/parity/" in o]
    assert stage_outputs and all("/tvm/" in o for o in stage_outputs), stage_outputs
    assert not [o for o in outputs if "/onnx/" in o or "/models/" in o or "/inputs/" in o]


@pytest.mark.slow
def test_changing_a_tvm_compile_option_recompiles_without_retuning(finished_run, tmp_path):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    config["backend_options"] = {"tvm": {"opt_level": 2}}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = planned_outputs(snakemake(workdir, "report", "-n", configfile=changed).stdout)
    assert not any("/tuning/" in o for o in outputs)
    compiled = sorted(o for o in outputs if "/compiled/" in o)
    assert compiled == [
        "results/compiled/tiny/tvm/fp32/static_b1",
        "results/compiled/tiny/tvm/fp32/static_b2",
    ]


@pytest.mark.slow
def test_changing_timing_policy_reruns_timings_not_compiles(finished_run, tmp_path):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    config["timing"]["min_iterations"] = 7
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = planned_outputs(snakemake(workdir, "report", "-n", configfile=changed).stdout)
    assert any("/timings/" in o for o in outputs)
    assert not any(
        stage in o
        for o in outputs
        for stage in ("/compiled/", "/parity/", "/onnx/", "/comparisons/")
    )


@pytest.mark.slow
def test_changing_the_comparison_policy_reruns_only_the_comparisons(finished_run, tmp_path):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    config["comparison"]["rounds"] = 7
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = planned_outputs(snakemake(workdir, "report", "-n", configfile=changed).stdout)
    assert sorted(o for o in outputs if o.startswith("results/") and o.endswith(".json")) == [
        "results/comparisons/tiny/cpu/b1.json",
        "results/comparisons/tiny/cpu/b2.json",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"batch_sizes": [-1]}, "invalid config at batch_sizes/0"),
        ({"backends": ["pytorch", "tflite"]}, "unknown backend 'tflite'"),
        ({"models": {"m": {"source": "torchvision"}}}, "needs 'architecture'"),
    ],
)
def test_bad_config_fails_at_dag_build_with_a_clear_line(tmp_path, change, expected):
    config = {**yaml.safe_load(TINY.read_text()), **change}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "report", "-n", configfile=bad, check=False)
    assert result.returncode != 0
    assert expected in result.stderr + result.stdout


def test_a_missing_checkpoint_is_refused_when_the_dag_is_built_in_one_line(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["models"] = {
        "mine": {
            "source": "checkpoint",
            "architecture": "mobilenet_v3_small",
            "checkpoint": str(tmp_path / "absent.pt"),
            "input_size": 32,
        }
    }
    path = tmp_path / "ckpt.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "report", "-n", configfile=path, check=False)
    assert result.returncode != 0
    lines = (result.stderr + result.stdout).splitlines()
    assert (
        f"models.mine: checkpoint {tmp_path / 'absent.pt'} not found: fix models.mine.checkpoint"
        in lines
    )
    assert not (tmp_path / "results").exists()


def test_explicit_configurations_plan_exactly_their_jobs_and_the_baseline(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["configurations"] = [
        {"backend": "openvino", "precision": "int8", "shape": "static", "batch": 4},
        {"backend": "onnxruntime", "precision": "fp32", "shape": "dynamic", "batch": 4},
    ]
    path = tmp_path / "picked.yaml"
    path.write_text(yaml.safe_dump(config))
    outputs = _files(planned_outputs(snakemake(tmp_path, "report", "-n", configfile=path).stdout))
    assert sorted(o for o in outputs if o.startswith("results/timings/")) == [
        "results/timings/tiny/onnxruntime/fp32/dynamic/b4.json",
        "results/timings/tiny/openvino/int8/static_b4/b4.json",
        "results/timings/tiny/pytorch/fp32/dynamic/b4.json",
    ]
    assert [o for o in outputs if o.startswith("results/comparisons/")] == [
        "results/comparisons/tiny/cpu/b4.json"
    ]


def test_default_config_dry_run_builds_the_dag(tmp_path):
    result = snakemake(tmp_path, "report", "-n", configfile=REPO / "config" / "config.yaml")
    out = result.stdout
    for rule in (
        "fetch_model",
        "export_onnx",
        "simplify_onnx",
        "compile_model",
        "time_inference",
        "check_parity",
        "collect_results",
        "render_report",
    ):
        assert rule in out


def test_a_users_configfile_replaces_the_default_experiment(tmp_path):
    mine = {"models": {"mine": {"source": "efficientnet_lite0"}}, "backends": ["pytorch"]}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mine))
    outputs = planned_outputs(snakemake(tmp_path, "report", "-n", configfile=path).stdout)
    models = {o.split("/")[2] for o in outputs if o.startswith("results/models/")}
    assert models == {"mine"}
    assert not [o for o in outputs if "/onnxruntime/" in o or "/openvino/" in o]
    # the schema's defaults fill what the file leaves out: both default batch sizes
    assert {o.rsplit("/", 1)[1] for o in outputs if "/timings/" in o} == {"b1.json", "b8.json"}

    path.write_text(yaml.safe_dump({**mine, "models": {}}))
    result = snakemake(tmp_path, "report", "-n", configfile=path, check=False)
    assert result.returncode != 0
    assert "invalid config at models" in result.stdout + result.stderr


def test_config_overrides_still_apply_to_the_default_experiment(tmp_path):
    result = snakemake(tmp_path, "report", "-n", "--config", "backends=[pytorch]", configfile=None)
    outputs = planned_outputs(result.stdout)
    timings = [o for o in outputs if "/timings/" in o]
    assert timings and all("/pytorch/" in o for o in timings)
    models = {o.split("/")[2] for o in outputs if o.startswith("results/models/")}
    assert models == {"resnet18", "mobilenet_v3_small", "efficientnet_lite0"}


@pytest.mark.slow
def test_a_backend_registered_from_outside_flows_through_every_stage(tmp_path):
    """The throwaway tests/toy_backend.py and tests/toy_task.py (non-square frames, not the
    images of the classification task), registered through the environment alone."""
    import onnx

    config = yaml.safe_load(TINY.read_text())
    config["models"]["tiny"]["task"] = "toy_frames"
    config.update(
        backends=["pytorch", "onnx_reference", "onnx_scaled"], precisions=["fp32"], batch_sizes=[1]
    )
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    env = isolated_env()
    workdir = tmp_path / "run"
    dry = planned_outputs(snakemake(workdir, "report", "-n", configfile=path, env=env).stdout)
    for stage in ("compiled", "timings", "parity"):
        assert any(f"results/{stage}/tiny/onnx_reference/fp32/" in o for o in dry), stage

    snakemake(workdir, "report", configfile=path, env=env)
    from deploybench.io import load_npz
    from deploybench.parity import degenerate_reason

    # the verdict an exact backend must get is known from the reference alone
    reference = load_npz(workdir / "results" / "reference" / "tiny" / "outputs.npz")
    degenerate = any(degenerate_reason(v, class_scores=False) for v in reference.values())
    exact = "inconclusive" if degenerate else "pass"
    all_rows = list(csv.DictReader((workdir / "results" / "summary.csv").open()))
    assert {(r["backend"], r["shape"]) for r in all_rows} == {
        ("pytorch", "dynamic"),
        *((b, s) for b in ("onnx_reference", "onnx_scaled") for s in ("static_b1", "dynamic")),
    }
    rows = [r for r in all_rows if r["backend"] == "onnx_reference"]
    for row in rows:
        assert row["status"] == "ok" and row["version"] == onnx.__version__
        assert row["parity_verdict"] == exact
        assert float(row["parity_max_rel"]) < 1e-4
        assert row["cmp_baseline"] == "pytorch fp32" and float(row["cmp_speedup"]) > 0
    for row in (r for r in all_rows if r["backend"] == "onnx_scaled"):
        assert row["status"] == "ok" and row["parity_verdict"] == "fail"
        assert "max rel error" in row["parity_reason"]
    (baseline,) = (r for r in all_rows if r["backend"] == "pytorch")
    # the baseline is 1 by definition; its outputs are the reference run again
    assert float(baseline["cmp_speedup"]) == 1.0 and baseline["parity_verdict"] == exact
    html = (workdir / "reports" / "report.html").read_text()
    assert "onnx_reference" in html and "fp32 (numpy)" in html
    assert "<th>frames/s</th>" in html and "task <code>toy_frames</code>" in html
    graph = onnx.load(str(workdir / "results" / "onnx" / "tiny" / "exported.onnx")).graph
    assert [
        (i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
        for i in graph.input
    ] == [("frames", ["batch", 3, 24, 40])]


def isolated_env() -> dict[str, str]:
    """The environment for a run with the test backends registered from tests/."""
    import os

    from faults import FAULTY_ENVIRONMENT
    from toy_backend import ENVIRONMENT
    from toy_task import ENVIRONMENT as TASK_ENVIRONMENT

    return {
        **os.environ,
        "DEPLOYBENCH_BACKENDS": f"{ENVIRONMENT},{FAULTY_ENVIRONMENT}",
        "DEPLOYBENCH_TASKS": TASK_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.mark.slow
def test_native_crashes_become_failed_records_and_the_report_still_renders(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["models"]["tiny"]["input_size"] = 32
    config.update(
        backends=["pytorch", "onnxruntime", "faulty"],
        precisions=["fp32", "fp16", "bf16", "int8"],
        batch_sizes=[1],
        # 30 s: the hung load below waits it out, and the working backends stay far inside it
        # on a loaded 2-core host (10 s was exceeded there once, 2026-12-02)
        limits={"timing_seconds": 30, "parity_seconds": 30, "memory_mb": 1500},
    )
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "run"
    snakemake(workdir, "report", configfile=path, env=isolated_env())

    rows = {
        (r["backend"], r["precision"], r["shape"]): r
        for r in csv.DictReader((workdir / "results" / "summary.csv").open())
    }
    expected = {
        ("fp32", "dynamic"): ("failed", "killed by SIGSEGV during timing"),
        ("fp32", "static_b1"): ("failed", "killed during timing: memory above the 1500 MB cap"),
        ("fp16", "dynamic"): (
            "skipped",
            "compile failed: aborted (SIGABRT) during compile: fatal: builder ran out",
        ),
        ("bf16", "dynamic"): ("failed", "no result after 30 s during load: timed out"),
        ("int8", "dynamic"): ("failed", "exited without a result during timing"),
    }
    for (precision, shape), (status, reason) in expected.items():
        row = rows[("faulty", precision, shape)]
        assert (row["status"], row["reason"][: len(reason)]) == (status, reason)
    assert rows[("faulty", "fp32", "dynamic")]["parity_reason"] == (
        "killed by SIGSEGV during the parity run"
    )
    assert rows[("faulty", "fp16", "dynamic")]["compile_reason"].startswith("aborted (SIGABRT)")
    # the other backends' results are all there
    for backend, precision in (
        ("pytorch", "fp32"),
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
    ):
        row = rows[(backend, precision, "dynamic")]
        assert row["status"] == "ok", (backend, precision, row["reason"])
    html = (workdir / "reports" / "report.html").read_text()
    assert "killed by SIGSEGV during timing" in html
    assert "<td>onnxruntime</td><td>int8</td><td>dynamic</td>" in html
    log = next((workdir / "logs" / "time_inference" / "tiny" / "faulty").rglob("*.log"))
    assert "runs in child process" in log.read_text()

    # once the cause is fixed: the failed jobs, and what depends on them, rerun; nothing else
    listed = subprocess.run(
        [sys.executable, "-m", "deploybench.retry"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "results/compiled/tiny/faulty/fp16/dynamic" in listed
    assert "results/timings/tiny/faulty/fp32/dynamic/b1.json" in listed
    assert not any(f"/{ok}/" in target for target in listed for ok in ("pytorch", "onnxruntime"))
    retried = _results(
        planned_outputs(
            snakemake(
                workdir, "report", "-n", "--forcerun", *listed, configfile=path, env=isolated_env()
            ).stdout
        )
    )
    assert set(listed) <= set(retried)
    per_configuration = [o for o in retried if not o.startswith("results/comparisons/")]
    assert per_configuration and all("/faulty/" in o for o in per_configuration)


@pytest.mark.slow
def test_a_sigsegv_sent_to_a_running_timing_job_leaves_the_others_in_the_report(tmp_path):
    """The issue's scenario: SIGSEGV to the OpenVINO timing job's backend process."""
    import os
    import re
    import signal

    pytest.importorskip("openvino")
    config = yaml.safe_load(TINY.read_text())
    config.update(
        backends=["pytorch", "onnxruntime", "openvino"],
        precisions=["fp32"],
        shapes=["static"],
        batch_sizes=[1],
        crosscheck={"enabled": False},
    )
    config["timing"].update(min_seconds=6, max_seconds=30)
    path = tmp_path / "segv.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "run"
    workdir.mkdir()
    process = subprocess.Popen(
        snakemake_command(workdir, "report", configfile=path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = workdir / "logs/time_inference/tiny/openvino/fp32/static_b1/b1.log"
    deadline = time.monotonic() + 600
    pid = None
    # the signal goes to the child once its log says it is timing, never after a fixed delay
    while pid is None:
        assert process.poll() is None, "the run ended before the OpenVINO timing started"
        assert time.monotonic() < deadline
        text = log.read_text() if log.exists() else ""
        found = re.search(r"runs in child process (\d+)", text)
        if found and "; timing" in text:
            pid = int(found.group(1))
        time.sleep(0.2)
    os.kill(pid, signal.SIGSEGV)
    assert process.wait(timeout=600) == 0, "the run must finish"

    rows = {r["backend"]: r for r in csv.DictReader((workdir / "results" / "summary.csv").open())}
    assert rows["pytorch"]["status"] == "ok" and rows["onnxruntime"]["status"] == "ok"
    assert rows["openvino"]["status"] == "failed"
    assert rows["openvino"]["reason"] == "killed by SIGSEGV during timing"
    html = (workdir / "reports" / "report.html").read_text()
    assert "killed by SIGSEGV during timing" in html


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def small_run(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config.update(backends=["pytorch", "onnxruntime"], precisions=["fp32"], batch_sizes=[1])
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "run"
    workdir.mkdir()
    return workdir, path


def wait_for_first_timing(workdir: Path, process) -> None:

    deadline = time.monotonic() + 300
    while not list((workdir / "logs").glob("time_inference/**/*.log")):
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.mark.slow
def test_a_run_killed_outright_resumes_after_unlock(tmp_path):
    import os
    import signal

    workdir, path = small_run(tmp_path)
    command = snakemake_command(workdir, "report", configfile=path)
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for_first_timing(workdir, process)
    os.killpg(process.pid, signal.SIGKILL)  # no handler runs: a power cut, for the workflow
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not workers_left(), "a backend process outlived its killed job"

    locked = snakemake(workdir, "report", configfile=path, check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(workdir, "--unlock", configfile=path)
    snakemake(workdir, "report", configfile=path)
    assert (workdir / "reports" / "report.html").exists()
    assert not [p for p in (workdir / "results").rglob("*.tmp")]
    rows = list(csv.DictReader((workdir / "results" / "summary.csv").open()))
    assert {(r["backend"], r["status"]) for r in rows} == {("pytorch", "ok"), ("onnxruntime", "ok")}
    assert "Nothing to be done" in snakemake(workdir, "report", "-n", configfile=path).stdout


@pytest.mark.slow
def test_interrupted_run_resumes_cleanly(tmp_path):
    import os
    import signal

    workdir, path = small_run(tmp_path)
    command = snakemake_command(workdir, "report", configfile=path)
    # its own process group, which gets the SIGINT as a terminal's Ctrl-C would send it
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # a CI started in the background inherits SIGINT ignored: restore what a terminal has
        preexec_fn=default_sigint,
    )
    wait_for_first_timing(workdir, process)  # interrupt while the first timing job runs
    # Snakemake can miss a SIGINT that lands while it is between scheduler passes: repeat it
    for _ in range(24):
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue
    assert process.wait(timeout=120) != 0
    assert not (workdir / "reports" / "report.html").exists()
    # the supervised backend processes went with their jobs
    assert not workers_left(), "a backend process outlived its interrupted job"

    snakemake(workdir, "report", configfile=path)
    assert (workdir / "reports" / "report.html").exists()
    assert not [p for p in (workdir / "results").rglob("*.tmp")]
    assert "Nothing to be done" in snakemake(workdir, "report", "-n", configfile=path).stdout


def planned_jobs(dry_run_output: str) -> list[dict[str, str]]:
    """Each planned job's rule, output and resources line, from a dry run's printout."""
    jobs: list[dict[str, str]] = []
    for line in dry_run_output.splitlines():
        stripped = line.strip()
        if stripped.startswith("rule ") and stripped.endswith(":"):
            jobs.append({"rule": stripped[5:-1], "output": "", "resources": ""})
        elif jobs and stripped.startswith(("output:", "resources:")):
            field, value = stripped.split(":", 1)
            jobs[-1][field] = value.strip()
    return jobs


def test_gpu_true_plans_the_gpu_jobs_on_a_host_without_one_and_only_they_ask_for_a_gpu(tmp_path):
    overrides = ("--config", "gpu=True", "backends=[pytorch,onnxruntime,pytorch_cuda]")
    jobs = planned_jobs(snakemake(tmp_path, "report", "-n", *overrides).stdout)
    on_gpu = [j for j in jobs if "/pytorch_cuda/" in j["output"] or "/cuda/" in j["output"]]
    assert {j["rule"] for j in on_gpu} == {
        "compile_model",
        "time_inference",
        "check_parity",
        "compare_configs",
    }
    assert all("gpu=1" in j["resources"] for j in on_gpu)
    others = [j for j in jobs if j not in on_gpu]
    assert others and not any("gpu=1" in j["resources"] for j in others)
    # each device is compared against its own baseline, in a job of its own
    comparisons = sorted(j["output"] for j in jobs if j["rule"] == "compare_configs")
    assert comparisons == [
        "results/comparisons/tiny/cpu/b1.json",
        "results/comparisons/tiny/cpu/b2.json",
        "results/comparisons/tiny/cuda/b1.json",
        "results/comparisons/tiny/cuda/b2.json",
    ]
    # int8 is not offered by eager CUDA: skipped, so never planned
    assert not [j for j in on_gpu if "/int8/" in j["output"]]

    without = planned_outputs(
        snakemake(tmp_path, "report", "-n", "--config", "gpu=False", overrides[2]).stdout
    )
    assert without and not [o for o in without if "cuda" in o]


SLURM_PROFILE = ("--profile", str(REPO / "profiles" / "slurm"))
PROFILES = [
    pytest.param((), id="local"),
    pytest.param(
        SLURM_PROFILE,
        id="slurm-profile",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
            reason="snakemake-executor-plugin-slurm not installed (pip install -e '.[slurm]')",
        ),
    ),
]


def _files(outputs):
    """The planned output files, one by one (a dry run lists a job's outputs on one line)."""
    return [path for line in outputs for path in line.split(", ")]


def _results(outputs):
    """Every planned result file but the collected tables."""
    return [o for o in _files(outputs) if o.startswith("results/") and o.count("/") > 1]


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_adding_a_model_plans_only_that_models_chain(finished_run, tmp_path, profile):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    config["models"]["tiny_too"] = {**config["models"]["tiny"], "architecture": "resnet18"}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = planned_outputs(
        snakemake(workdir, "report", "-n", *profile, configfile=changed).stdout
    )
    assert _results(outputs) and all("/tiny_too/" in o for o in _results(outputs))
    files = _files(outputs)
    assert "results/summary.csv" in files and "reports/report.html" in files
    assert "results/models/tiny_too/model.pt" in _results(outputs)


@pytest.mark.slow
def test_measuring_again_reruns_the_timings_and_comparisons_and_keeps_every_artifact(
    finished_run,
):
    """README's "measure again": what is forced is timed again; nothing is compiled again."""
    workdir, _ = finished_run
    outputs = _results(
        planned_outputs(
            snakemake(
                workdir, "report", "-n", "--forcerun", "time_inference", "compare_configs"
            ).stdout
        )
    )
    stages = {o.split("/")[1] for o in outputs}
    assert stages == {"timings", "comparisons"}
    timed = list((workdir / "results" / "timings").rglob("*.json"))
    assert len([o for o in outputs if o.startswith("results/timings/")]) == len(timed)


@pytest.mark.slow
def test_calibrating_on_your_images_reruns_the_int8_chain_only(finished_run, tmp_path):
    from deploybench.inputs import load_sample_image
    from skimage import io

    workdir, _ = finished_run
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea", "coffee"):
        io.imsave(photos / f"{name}.png", load_sample_image(name))
    config = yaml.safe_load(TINY.read_text())
    config["models"]["tiny"]["calibration_images"] = str(photos)
    changed = tmp_path / "calibrated.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = _results(
        planned_outputs(snakemake(workdir, "report", "-n", configfile=changed).stdout)
    )
    assert "results/inputs/tiny/calibration.npz" in outputs
    compiled = [o for o in outputs if o.startswith("results/compiled/")]
    assert compiled and all("/int8/" in o for o in compiled)
    assert not any(
        o.startswith(("results/models/", "results/onnx/", "results/reference/")) for o in outputs
    )


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_adding_a_batch_size_plans_only_its_timings_and_comparisons(
    finished_run, tmp_path, profile
):
    workdir, _ = finished_run
    config = yaml.safe_load(TINY.read_text())
    config["batch_sizes"] = [1, 2, 4]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    outputs = _results(
        planned_outputs(snakemake(workdir, "report", "-n", *profile, configfile=changed).stdout)
    )
    # the dynamic graph's configurations are timed at the new batch; the static ones need the
    # batch-4 graph first (simplified, compiled, parity-checked). The one exception: TVM tunes
    # all static batch sizes of a model in one job (docs/tvm.md), so its database is re-tuned
    # and its configurations recompiled, and the comparisons that hold them rerun.
    tvm = [o for o in outputs if "/tvm" in o]
    comparisons = [o for o in outputs if "/comparisons/" in o]
    rest = [o for o in outputs if o not in tvm and o not in comparisons]
    assert rest and all("/b4" in o or "static_b4" in o for o in rest), rest
    assert "results/tuning/tiny/tvm" in tvm
    assert "results/comparisons/tiny/cpu/b4.json" in comparisons
    assert "results/timings/tiny/pytorch/fp32/dynamic/b4.json" in outputs
    assert "results/onnx/tiny/static_b4/model.onnx" in outputs


FAMILIES = REPO / "tests" / "data" / "families_tiny.yaml"


@pytest.mark.slow
def test_every_family_runs_end_to_end_with_its_own_parity(tmp_path):
    """A detector (its heads deployed, its own NMS in parity), a segmentation net, a text
    encoder and a two-stage detector's RPN head (a part, fed what the whole model hands it),
    tiny, through every CPU backend: each judged by its task's measures."""
    import onnx

    snakemake(tmp_path, "report", configfile=FAMILIES)
    rows = list(csv.DictReader((tmp_path / "results" / "summary.csv").open()))
    ran = [r for r in rows if r["status"] == "ok"]
    assert {r["model"] for r in ran} == {"detector", "segmenter", "encoder", "rpn_head"}
    assert {r["backend"] for r in ran} == {"pytorch", "onnxruntime", "openvino"}
    skipped = [r for r in rows if r["status"] != "ok"]
    assert skipped and all(r["backend"] == "pytorch" and r["precision"] == "int8" for r in skipped)
    measured = {"detector": "box agreement", "segmenter": "miou", "encoder": "", "rpn_head": ""}
    for row in ran:
        assert measured[row["model"]] in row["parity_measures"], row
        if row["precision"] == "fp32" and row["model"] != "rpn_head":
            # random weights, BatchNorm recalibrated: outputs with signal, judged in full
            assert row["parity_verdict"] == "pass", row
        assert float(row["cmp_speedup"]) > 0
    # the part's random MobileNet features are near zero: errors judged, agreement not
    part = [r for r in ran if r["model"] == "rpn_head" and r["precision"] == "fp32"]
    assert part and all(r["parity_verdict"] in ("pass", "inconclusive") for r in part)

    def names(model, kind):
        graph = onnx.load(str(tmp_path / "results" / "onnx" / model / "exported.onnx")).graph
        return [value.name for value in getattr(graph, kind)]

    assert names("detector", "output") == ["cls_logits", "bbox_regression"]
    # the RPN head takes the FPN's three maps and returns logits and box deltas for each
    assert names("rpn_head", "input") == ["x_0", "x_1", "x_2"]
    assert len(names("rpn_head", "output")) == 6
    html = (tmp_path / "reports" / "report.html").read_text()
    for family in ("detection", "segmentation", "text-encoder"):
        assert f"task <code>{family}</code>" in html
    assert "<th>sequences/s</th>" in html and "box agreement" in html
    assert "the part rpn.head" in html


@pytest.mark.slow
def test_your_factory_and_fine_tuned_checkpoint_run_and_replacing_either_file_reruns_its_chain(
    tmp_path,
):
    """A model from the user's own factory (its weights from their checkpoint) and a torchvision
    classifier fine-tuned to 10 classes, end to end; then their files are DAG inputs: a new
    checkpoint under the same path, or an edit of the factory's module, reruns that model's
    chain and nothing of the other's."""
    import shutil

    import torch
    import torchvision

    factory = tmp_path / "code" / "small_cnn.py"
    factory.parent.mkdir()
    shutil.copy(REPO / "tests" / "data" / "user_code" / "small_cnn.py", factory)
    spec = importlib.util.spec_from_file_location("small_cnn_e2e", factory)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(3)
    torch.save(module.build(num_classes=10, width=8).state_dict(), tmp_path / "mine.pt")
    tuned = torchvision.models.mobilenet_v3_small(weights=None, num_classes=10)
    torch.save({"model": tuned.state_dict()}, tmp_path / "tuned.pt")
    # judged on hand-labelled photos too: its 10 classes named in a labels file
    from helpers import labelled_photos

    names = {"281": "cat", "967": "espresso", "409": "clock", "657": "missile"}
    labelled_photos(tmp_path / "photos", names)
    (tmp_path / "labels.txt").write_text(
        "\n".join([*names.values(), *(f"other{i}" for i in range(6))])
    )
    config = yaml.safe_load(TINY.read_text())
    config.update(
        models={
            "mine": {
                "source": "python",
                "factory": f"{factory}:build",
                "builder_options": {"num_classes": 10, "width": 8},
                "checkpoint": str(tmp_path / "mine.pt"),
                "input_size": 64,
                "evaluation_images": str(tmp_path / "photos"),
                "labels": str(tmp_path / "labels.txt"),
                "calibration_images": str(tmp_path / "photos"),  # int8 calibrated on them
            },
            "tuned": {
                "source": "checkpoint",
                "architecture": "mobilenet_v3_small",
                "checkpoint": str(tmp_path / "tuned.pt"),
                "builder_options": {"num_classes": 10},
                "input_size": 64,
            },
        },
        backends=["pytorch", "onnxruntime"],
        precisions=["fp32"],
        shapes=["dynamic"],
        batch_sizes=[1],
        configurations=[
            {"backend": "onnxruntime", "precision": "fp32"},
            {"model": "mine", "backend": "onnxruntime", "precision": "int8"},
        ],
    )
    configfile = tmp_path / "yours.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "report", configfile=configfile)
    rows = list(csv.DictReader((tmp_path / "results" / "summary.csv").open()))
    ran = {(r["model"], r["backend"], r["precision"]) for r in rows if r["status"] == "ok"}
    assert ran == {
        *(
            (model, backend, "fp32")
            for model in ("mine", "tuned")
            for backend in ("pytorch", "onnxruntime")
        ),
        ("mine", "onnxruntime", "int8"),
    }
    import numpy as np

    calibration = np.load(tmp_path / "results" / "inputs" / "mine" / "calibration.npz")
    assert calibration["feed_0"].shape == (8, 3, 64, 64)  # 4 photos, then crops of them
    rows = [r for r in rows if r["precision"] == "fp32"]
    verdicts = {r["model"]: r["parity_verdict"] for r in rows if r["backend"] == "onnxruntime"}
    # the tuned checkpoint's weights are torchvision's random init: its scores carry too little
    # signal for agreement to be judged, its errors are
    assert verdicts["mine"] == "pass" and verdicts["tuned"] in ("pass", "inconclusive"), rows
    for row in rows:
        labelled = row["model"] == "mine"
        images = row["parity_accuracy_images"]
        assert (images != "" and float(images) == 4) is labelled, row
        if labelled:
            low, top1, high = (
                float(row[f"parity_accuracy_top1{s}"]) for s in ("_low", "", "_high")
            )
            assert 0 <= low <= top1 <= high <= 1
    html = (tmp_path / "reports" / "report.html").read_text()
    assert f"<code>{factory}:build</code>" in html
    assert "Accuracy on your labelled images" in html

    def rerun_plan():
        return _results(
            planned_outputs(snakemake(tmp_path, "report", "-n", configfile=configfile).stdout)
        )

    assert rerun_plan() == []
    time.sleep(1.1)  # a new mtime, on any file system
    torch.save(module.build(num_classes=10, width=8).state_dict(), tmp_path / "mine.pt")
    replaced = rerun_plan()
    assert "results/models/mine/model.pt" in replaced
    assert any("/onnxruntime/" in o for o in replaced)  # the whole chain, down to timing
    assert not any("/tuned/" in o for o in replaced)
    snakemake(tmp_path, "report", "--touch", configfile=configfile)  # as if it had rerun
    assert rerun_plan() == []
    time.sleep(1.1)
    factory.write_text(factory.read_text() + "\n# the user edits their model code\n")
    assert "results/models/mine/model.pt" in rerun_plan()


@pytest.mark.slow
def test_an_onnx_file_runs_end_to_end_without_pytorch_against_onnx_runtime_fp32(tmp_path):
    """Two ONNX files, every job run as if torch were not installed: a classifier with a free
    batch axis, and a two-input graph fixed at batch 1 (described as tensors). No eager rows,
    ONNX Runtime fp32 the baseline and the reference; replacing a file reruns its chain only."""
    import os

    from helpers import small_cnn_onnx, two_input_graph

    small_cnn_onnx(tmp_path / "cnn.onnx")
    two_input_graph(tmp_path / "pair.onnx", 1)
    config = yaml.safe_load(TINY.read_text())
    config.update(
        models={
            "cnn": {"source": "onnx", "onnx": "cnn.onnx", "input_size": 64},
            "pair": {
                "source": "onnx",
                "onnx": "pair.onnx",
                "task": "tensors",
                "inputs": {
                    "x": {"shape": ["batch", 4], "range": [-1, 1]},
                    "mask": {"shape": ["batch", 4]},
                },
            },
        },
        backends=["pytorch", "onnxruntime", "openvino"],
        precisions=["fp32"],
        shapes=["static", "dynamic"],
        batch_sizes=[1, 2],
    )
    configfile = tmp_path / "files.yaml"
    configfile.write_text(yaml.safe_dump(config))
    without_torch = {
        **os.environ,
        "PYTHONPATH": str(REPO / "tests" / "data" / "without_torch"),
    }
    snakemake(tmp_path, "report", configfile=configfile, env=without_torch)
    rows = list(csv.DictReader((tmp_path / "results" / "summary.csv").open()))
    ran = {(r["model"], r["backend"], r["shape"], r["batch"]) for r in rows if r["status"] == "ok"}
    assert ran == {
        *(
            ("cnn", b, s, n)
            for b in ("onnxruntime", "openvino")
            for s, n in (("dynamic", "1"), ("dynamic", "2"), ("static_b1", "1"), ("static_b2", "2"))
        ),
        ("pair", "onnxruntime", "static_b1", "1"),
        ("pair", "openvino", "static_b1", "1"),
    }
    eager = [r for r in rows if r["backend"] == "pytorch"]
    assert eager and all("is an ONNX file: there is no PyTorch model" in r["reason"] for r in eager)
    fixed = [
        r
        for r in rows
        if r["model"] == "pair" and r["backend"] != "pytorch" and r["status"] != "ok"
    ]
    assert fixed and all("fixes the batch at 1" in r["reason"] for r in fixed)
    baselines = {r["model"]: r["cmp_baseline"] for r in rows if r["status"] == "ok"}
    assert baselines == {"cnn": "onnxruntime fp32 dynamic", "pair": "onnxruntime fp32 static_b1"}
    # the CNN's BatchNorm statistics were set from images: its scores carry a signal
    assert {r["parity_verdict"] for r in rows if r["model"] == "cnn" and r["status"] == "ok"} == {
        "pass"
    }
    html = (tmp_path / "reports" / "report.html").read_text()
    assert "An ONNX file, deployed as it is" in html

    def rerun_plan():
        dry = snakemake(tmp_path, "report", "-n", configfile=configfile, env=without_torch)
        return _results(planned_outputs(dry.stdout))

    assert rerun_plan() == []
    time.sleep(1.1)
    import onnx

    retrained = onnx.load(tmp_path / "pair.onnx")
    retrained.doc_string = "retrained"  # a new file under the same path (an equal one is no change)
    onnx.save(retrained, tmp_path / "pair.onnx")
    replaced = rerun_plan()
    assert "results/onnx/pair/exported.onnx" in replaced
    assert replaced and not any("/cnn/" in o for o in replaced)
