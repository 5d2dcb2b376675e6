import os

from deploybench.entry import run_job
from deploybench.stages.prepare import reference_outputs

run_job(
    snakemake.log[0],
    reference_outputs,
    model_dir=os.path.dirname(snakemake.input.weights),
    inputs_npz=snakemake.input.evaluation,
    threads=snakemake.threads,
    out_npz=snakemake.output.outputs,
)
