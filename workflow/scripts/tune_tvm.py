from deploybench.entry import run_job
from deploybench.specs import LimitSettings, TuningSettings
from deploybench.stages.tune import tune_model

run_job(
    snakemake.log[0],
    tune_model,
    graphs=list(snakemake.input.graphs),
    evaluation_npz=snakemake.input.evaluation,
    tuning=TuningSettings.from_validated(snakemake.params.tuning),
    threads=snakemake.params.threads,
    limits=LimitSettings.from_validated(snakemake.config["limits"]),
    out_dir=snakemake.output.tuning,
)
