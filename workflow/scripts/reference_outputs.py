from deploybench.entry import run_job
from deploybench.pipeline import reference_outputs

run_job(
    snakemake.log[0],
    reference_outputs,
    model_pt=snakemake.input.weights,
    inputs_npz=snakemake.input.evaluation,
    out_npz=snakemake.output.outputs,
)
