"""ONNX export (batch axis dynamic) and simplification into each planned batch shape."""

from __future__ import annotations

import logging
from pathlib import Path

from ..io import write_json
from ..specs import static_batch
from ..tasks import task_for

log = logging.getLogger("deploybench")


def export_onnx(model_pt: str, exporter: str, opset: int, out_onnx: str, out_json: str) -> None:
    from ..models import load_model

    model, spec = load_model(Path(model_pt).parent)
    facts = task_for(spec).export_onnx(model, spec, out_onnx, None, exporter, opset)
    write_json(out_json, facts)
    log.info("exported %s: %d nodes, opset %s", spec.name, facts["nodes"], facts["opset"])


def simplify_onnx(in_onnx: str, shape: str, simplifier: str, out_onnx: str, out_json: str) -> None:
    from ..onnx_tools import simplify_onnx as simplify

    facts = simplify(in_onnx, out_onnx, simplifier, batch=static_batch(shape))
    write_json(out_json, facts)
    log.info(
        "%s %s: %d -> %d nodes", simplifier, shape, facts["nodes_before"], facts["nodes_after"]
    )
