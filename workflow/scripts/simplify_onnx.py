from deploybench.entry import run_job
from deploybench.stages.onnx import simplify_onnx

run_job(
    snakemake.log[0],
    simplify_onnx,
    in_onnx=snakemake.input.onnx,
    shape=snakemake.wildcards.shape,
    simplifier=snakemake.params.simplifier,
    out_onnx=snakemake.output.onnx,
    out_json=snakemake.output.facts,
)
