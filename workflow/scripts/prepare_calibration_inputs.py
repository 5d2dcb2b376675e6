from deploybench.entry import run_job
from deploybench.stages.prepare import prepare_calibration_inputs

run_job(
    snakemake.log[0],
    prepare_calibration_inputs,
    spec=snakemake.params.spec,
    size=snakemake.params.size,
    seed=snakemake.params.seed,
    out_path=snakemake.output.calibration,
)
