from deploybench.entry import run_job
from deploybench.stages.timing import time_inference

run_job(
    snakemake.log[0],
    time_inference,
    artifact_dir=snakemake.input.artifact,
    inputs_npz=snakemake.input.evaluation,
    key=snakemake.params.key,
    batch=int(snakemake.wildcards.batch),
    threads=snakemake.params.threads,
    timing=snakemake.params.timing,
    options=snakemake.params.options,
    limits=snakemake.config["limits"],
    crosscheck=snakemake.params.crosscheck,
    out_json=snakemake.output.timing,
)
