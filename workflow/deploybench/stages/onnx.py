"""ONNX export (batch axis dynamic) and simplification into each planned batch shape."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import first_line
from ..io import atomic_path, read_json, write_json
from ..records import HARD_ERRORS
from ..specs import static_batch
from ..tasks import task_for

log = logging.getLogger("deploybench")
FAILED = "failed"


def export_onnx(model_pt: str, exporter: str, opset: int, out_onnx: str, out_json: str) -> None:
    """Export what the model's task deploys. An exporter that fails leaves an empty graph and a
    failed record: that model's ONNX configurations fail with its reason, the rest go on."""
    from ..models import load_model

    model, spec = load_model(Path(model_pt).parent)
    try:
        facts = task_for(spec).export_onnx(model, spec, out_onnx, None, exporter, opset)
    except HARD_ERRORS:
        raise
    except Exception as exc:
        log.exception("export failed")
        _write_failed_graph(out_onnx, out_json, export_failure(exc, model, exporter))
        return
    write_json(out_json, facts)
    log.info("exported %s: %d nodes, opset %s", spec.name, facts["nodes"], facts["opset"])


def import_onnx(spec: dict, source: str, out_onnx: str, out_json: str, out_facts: str) -> None:
    """An ONNX file (``source: onnx``) taken in as the model's exported graph, checked against
    its task's data (names, dtypes, shapes), with the model's facts beside it. No PyTorch."""
    from ..onnx_tools import import_onnx as copy_graph
    from ..specs import ModelSpec

    model = ModelSpec(**spec)
    task = task_for(model)  # checked against the file when the DAG was built
    shapes = {i.name: i.concrete_shape(1, model.axes) for i in task.inputs(model)}
    facts = copy_graph(source, out_onnx, shapes)
    write_json(out_json, facts)
    write_json(
        out_facts,
        {
            "spec": model.as_dict(),
            "pretrained": True,
            "weights_note": "as in the ONNX file",
            "parameters": facts["parameters"],
            "flops": None,  # counted on a PyTorch module; an ONNX file has none
            "recalibrated_batchnorm_layers": None,
            "torch": None,
        },
    )
    log.info("imported %s: %d nodes, opset %s", source, facts["nodes"], facts["opset"])


def export_failure(exc: BaseException, model, exporter: str) -> str:
    """The exporter's own reason (the innermost cause: torch.onnx wraps it), and what to try
    next: deploying one part of the model."""
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    children = ", ".join(name for name, _ in model.named_children()) or "none"
    return (
        f"the {exporter} exporter failed: {first_line(cause)}; deploy a part of the model "
        f"that exports with module: (its children: {children})"
    )


def _write_failed_graph(out_onnx: str, out_json: str, reason: str) -> None:
    with atomic_path(out_onnx) as tmp:
        tmp.write_bytes(b"")  # no graph: every reader checks the record first
    write_json(out_json, {"status": FAILED, "reason": reason})


def graph_failure(graph: str | Path) -> str | None:
    """Why an ONNX graph of the workflow was not made (its model's export failed), or None.
    ``graph``: an exported or simplified graph; anything else (a checkpoint) has no record."""
    graph = Path(graph)
    record = {"exported.onnx": "export.json", "model.onnx": "simplify.json"}.get(graph.name)
    if graph.suffix != ".onnx" or record is None or not (graph.parent / record).is_file():
        return None
    facts = read_json(graph.parent / record)
    return facts["reason"] if facts.get("status") == FAILED else None


def simplify_onnx(in_onnx: str, shape: str, simplifier: str, out_onnx: str, out_json: str) -> None:
    from ..onnx_tools import simplify_onnx as simplify

    failure = graph_failure(in_onnx)
    if failure:
        _write_failed_graph(out_onnx, out_json, failure)
        return
    facts = simplify(in_onnx, out_onnx, simplifier, batch=static_batch(shape))
    write_json(out_json, facts)
    log.info(
        "%s %s: %d -> %d nodes", simplifier, shape, facts["nodes_before"], facts["nodes_after"]
    )
