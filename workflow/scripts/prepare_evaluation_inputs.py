from deploybench.entry import run_job
from deploybench.pipeline import prepare_evaluation_inputs

run_job(
    snakemake.log[0],
    prepare_evaluation_inputs,
    spec=snakemake.params.spec,
    out_path=snakemake.output.evaluation,
)
