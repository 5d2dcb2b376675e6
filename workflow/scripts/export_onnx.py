from deploybench.entry import run_job
from deploybench.stages.onnx import export_onnx

run_job(
    snakemake.log[0],
    export_onnx,
    model_pt=snakemake.input.weights,
    exporter=snakemake.params.exporter,
    opset=snakemake.params.opset,
    out_onnx=snakemake.output.onnx,
    out_json=snakemake.output.facts,
)
