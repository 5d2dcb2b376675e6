from deploybench.entry import run_job
from deploybench.specs import LimitSettings, TimingSettings
from deploybench.stages.timing import time_inference

run_job(
    snakemake.log[0],
    time_inference,
    artifact_dir=snakemake.input.artifact,
    inputs_npz=snakemake.input.evaluation,
    key=snakemake.params.key,
    batch=int(snakemake.wildcards.batch),
    threads=snakemake.params.threads,
    timing=TimingSettings.from_validated(snakemake.params.timing),
    options=snakemake.params.options,
    limits=LimitSettings.from_validated(snakemake.config["limits"]),
    crosscheck=snakemake.params.crosscheck,
    out_json=snakemake.output.timing,
)
