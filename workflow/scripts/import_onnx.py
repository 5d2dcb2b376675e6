from deploybench.entry import run_job
from deploybench.stages.onnx import import_onnx

run_job(
    snakemake.log[0],
    import_onnx,
    spec=snakemake.params.spec,
    source=snakemake.input.onnx,
    out_onnx=snakemake.output.onnx,
    out_json=snakemake.output.facts,
    out_facts=snakemake.output.model_facts,
)
