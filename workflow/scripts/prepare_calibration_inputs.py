import os

from deploybench.entry import run_job
from deploybench.stages.prepare import prepare_calibration_inputs

run_job(
    snakemake.log[0],
    prepare_calibration_inputs,
    spec=snakemake.params.spec,
    size=snakemake.params.size,
    seed=snakemake.params.seed,
    out_path=snakemake.output.calibration,
    # a part's inputs are captured from the whole model: its weights are an input then
    model_dir=os.path.dirname(weights) if (weights := snakemake.input.get("weights")) else None,
)
