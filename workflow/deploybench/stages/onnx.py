"""ONNX export (batch axis dynamic) and simplification into each planned batch shape."""

from __future__ import annotations

import logging
from pathlib import Path

from ..io import write_json
from ..specs import static_batch
from ..tasks import get_task

log = logging.getLogger("deploybench")


def export_onnx(model_pt: str, exporter: str, opset: int, out_onnx: str, out_json: str) -> None:
    from ..tasks import load_deployable

    model, spec = load_deployable(Path(model_pt).parent)
    facts = get_task(spec.task).export_onnx(model, spec, out_onnx, None, exporter, opset)
    write_json(out_json, facts)
    log.info("exported %s: %d nodes, opset %s", spec.name, facts["nodes"], facts["opset"])


def simplify_onnx(in_onnx: str, shape: str, simplifier: str, out_onnx: str, out_json: str) -> None:
    from ..onnx_tools import simplify_onnx as simplify

    facts = simplify(in_onnx, out_onnx, simplifier, batch=static_batch(shape))
    write_json(out_json, facts)
    log.info(
        "%s %s: %d -> %d nodes", simplifier, shape, facts["nodes_before"], facts["nodes_after"]
    )
