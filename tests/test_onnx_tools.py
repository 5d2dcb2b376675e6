import numpy as np
import onnx
import pytest
from deploybench.errors import InputFileError
from deploybench.onnx_tools import fix_batch, input_batch, load_onnx, simplify_onnx
from helpers import export_classifier


def test_static_and_dynamic_batch_axes(tiny_onnx):
    assert input_batch(tiny_onnx["static"]) == 2
    assert input_batch(tiny_onnx["dynamic"]) is None


@pytest.mark.parametrize("simplifier", ["onnxsim", "onnxslim", "none"])
def test_simplifiers_record_node_counts_and_keep_a_valid_graph(tiny_onnx, tmp_path, simplifier):
    pytest.importorskip(simplifier) if simplifier != "none" else None
    facts = simplify_onnx(tiny_onnx["dynamic"], tmp_path / "s.onnx", simplifier)
    assert facts["nodes_after"] <= facts["nodes_before"]
    assert facts["simplifier"] == simplifier
    onnx.checker.check_model(onnx.load(str(tmp_path / "s.onnx")))
    assert input_batch(tmp_path / "s.onnx") is None
    assert facts["batch"] == "dynamic"


@pytest.mark.parametrize("simplifier", ["onnxsim", "onnxslim", "none"])
def test_a_static_graph_derived_from_the_dynamic_export_matches_it(
    tiny_onnx, tiny_inputs, tmp_path, simplifier
):
    pytest.importorskip(simplifier) if simplifier != "none" else None
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "s.onnx"
    facts = simplify_onnx(tiny_onnx["dynamic"], out, simplifier, batch=3)
    assert input_batch(out) == 3 and facts["batch"] == 3
    assert [d for dims in facts["outputs"].values() for d in dims[:1]] == [3]
    batch = tiny_inputs["evaluation"][:3]

    def run(path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: batch})[0]

    np.testing.assert_allclose(run(out), run(tiny_onnx["dynamic"]), rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="input"):  # a graph fixed at 3 cannot be run at 2
        ort.InferenceSession(str(out)).run(None, {"input": batch[:2]})


def test_fixing_a_batch_that_is_already_fixed_otherwise_is_an_error(tiny_onnx):
    with pytest.raises(ValueError, match="already has batch 2"):
        fix_batch(load_onnx(tiny_onnx["static"]), 3)
    assert input_batch_of(fix_batch(load_onnx(tiny_onnx["static"]), 2)) == 2


def input_batch_of(model) -> int:
    return model.graph.input[0].type.tensor_type.shape.dim[0].dim_value


def test_dynamo_export_is_one_self_contained_file(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).eval()
    facts = export_classifier(model, 16, tmp_path / "m.onnx", None, "dynamo", 20)
    assert facts["opset"] == 20 and facts["exporter"] == "dynamo"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no .onnx.data beside it
    assert input_batch(tmp_path / "m.onnx") is None


def test_missing_and_corrupt_onnx_name_the_fix(tmp_path):
    with pytest.raises(InputFileError, match="missing: rerun export_onnx"):
        load_onnx(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(InputFileError, match="corrupt"):
        load_onnx(tmp_path / "bad.onnx")


def test_the_experiments_other_axes_are_fixed_in_every_graph_only_the_batch_stays_free(
    tmp_path, tiny_onnx
):
    """The text encoder is exported with batch and sequence free; simplify fixes the sequence
    (the experiment's length, kept in the graph's properties) in the dynamic graph too."""
    ort = pytest.importorskip("onnxruntime")
    from deploybench.models import build_model
    from deploybench.onnx_tools import AXES_PROPERTY
    from deploybench.tasks import task_for
    from helpers import model_spec

    spec = model_spec(
        "t", source="text_encoder", architecture="tiny", task="text-encoder", axes={"sequence": 12}
    )
    task = task_for(spec)
    model = build_model(spec).eval()
    task.export_onnx(model, spec, tmp_path / "e.onnx", None, "dynamo", 20)
    exported = onnx.load(str(tmp_path / "e.onnx"))
    assert {p.key: p.value for p in exported.metadata_props}[AXES_PROPERTY] == '{"sequence": 12}'
    dynamic = simplify_onnx(tmp_path / "e.onnx", tmp_path / "d.onnx", "onnxsim")
    static = simplify_onnx(tmp_path / "e.onnx", tmp_path / "s.onnx", "onnxsim", batch=3)
    assert dynamic["inputs"] == {"input_ids": ["batch", 12], "attention_mask": ["batch", 12]}
    assert static["inputs"] == {"input_ids": [3, 12], "attention_mask": [3, 12]}
    assert dynamic["fixed_axes"] == {"sequence": 12}
    feeds = task.example_feeds(spec, 3)
    session = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    (fixed,) = session.run(None, feeds)
    import torch

    with torch.inference_mode():
        eager = model(*(torch.from_numpy(v) for v in feeds.values())).numpy()
    np.testing.assert_allclose(fixed, eager, rtol=1e-4, atol=1e-5)
    # a classifier's graph has no other axis: nothing recorded, nothing fixed
    classifier = simplify_onnx(tiny_onnx["dynamic"], tmp_path / "c.onnx", "none")
    assert classifier["fixed_axes"] == {}
