from deploybench.entry import run_job
from deploybench.stages.prepare import reference_outputs

run_job(
    snakemake.log[0],
    reference_outputs,
    model=snakemake.input.get("weights") or snakemake.input.graph,
    inputs_npz=snakemake.input.evaluation,
    threads=snakemake.threads,
    out_npz=snakemake.output.outputs,
)
