from deploybench.entry import run_job
from deploybench.stages.prepare import prepare_evaluation_inputs

run_job(
    snakemake.log[0],
    prepare_evaluation_inputs,
    spec=snakemake.params.spec,
    out_path=snakemake.output.evaluation,
)
