"""Run every evaluation image through one configuration and judge it against PyTorch fp32."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from ..backends import Backend
from ..feeds import feed_count, load_feeds
from ..inputs import LABELS
from ..io import load_npz
from ..isolation import phase
from ..parity import check, labelled_accuracy
from ..records import LabelledAccuracy, ParityRecord
from ..specs import ConfigKey, LimitSettings, ModelSpec, Tolerance, static_batch
from ..tasks import task_for
from .common import bind_backend, compile_failure, isolated_record, stage_limits
from .inference import run_all

log = logging.getLogger("deploybench")


def check_parity(
    artifact_dir: str,
    inputs_npz: str,
    reference_npz: str,
    key: dict,
    tolerance: Tolerance,
    spec: dict,
    threads: int,
    options: dict,
    limits: LimitSettings,
    out_json: str,
) -> None:
    """Run every evaluation sample in a supervised child and judge its outputs as the model's
    task does."""
    config = ConfigKey(**key)
    failure = compile_failure(artifact_dir)
    if failure:
        ParityRecord.skipped(config, failure).write(out_json)
        return
    work = functools.partial(
        _compare,
        config,
        bind_backend(config, threads, options),
        Path(artifact_dir),
        load_feeds(inputs_npz),
        load_npz(reference_npz),
        tolerance,
        ModelSpec(**spec),
        load_npz(inputs_npz).get(LABELS),
    )
    isolated_record(ParityRecord, config, work, stage_limits(limits, "parity")).write(out_json)


def _compare(
    config,
    backend: Backend,
    artifact_dir,
    evaluation,
    reference,
    tolerance,
    spec: ModelSpec,
    labels=None,
):
    phase("load")
    with backend.load(artifact_dir) as runner:
        phase("the parity run")
        outputs = run_all(runner, evaluation, static_batch(config.shape))
        execution = runner.execution_info
    task = task_for(spec)
    measures = task.parity_measures(spec, reference, outputs)
    result = check(reference, outputs, tolerance, task.class_scores, measures)
    log.info("parity %s: %s", result.verdict, result.reason)
    accuracy = None
    if labels is not None and task.class_scores:
        scores = next(iter(outputs))  # the class scores: the first output
        accuracy = LabelledAccuracy(**labelled_accuracy(reference[scores], outputs[scores], labels))
        log.info("top-1 accuracy %.3f (reference %.3f)", accuracy.top1, accuracy.reference_top1)
    return ParityRecord.ok(
        config,
        reason=result.reason,
        verdict=result.verdict,
        degenerate_reference=result.degenerate_reference,
        outputs=result.outputs,
        output_names=result.output_names,
        measures=result.measures,
        accuracy=accuracy,
        images=feed_count(evaluation),
        tolerance={k: v for k, v in tolerance.params().items() if v is not None},
        execution=execution,
    )
