import onnx
import pytest
from deploybench.errors import InputFileError
from deploybench.onnx_tools import input_batch, load_onnx, simplify_onnx


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


def test_dynamo_export_is_one_self_contained_file(tmp_path):
    torch = pytest.importorskip("torch")
    from deploybench.onnx_tools import export_onnx

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).eval()
    facts = export_onnx(model, 8, tmp_path / "m.onnx", batch=None, exporter="dynamo", opset=20)
    assert facts["opset"] == 20 and facts["exporter"] == "dynamo"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no .onnx.data beside it
    assert input_batch(tmp_path / "m.onnx") is None


def test_missing_and_corrupt_onnx_name_the_fix(tmp_path):
    with pytest.raises(InputFileError, match="missing: rerun export_onnx"):
        load_onnx(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(InputFileError, match="corrupt"):
        load_onnx(tmp_path / "bad.onnx")
