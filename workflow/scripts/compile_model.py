from deploybench.entry import run_job
from deploybench.specs import LimitSettings
from deploybench.stages.compile import compile_model

run_job(
    snakemake.log[0],
    compile_model,
    source=snakemake.input.source,
    calibration_npz=snakemake.input.calibration or None,
    tuning_dir=snakemake.input.tuning or None,
    key=snakemake.params.key,
    options=snakemake.params.options,
    limits=LimitSettings.from_validated(snakemake.config["limits"]),
    out_dir=snakemake.output.artifact,
)
