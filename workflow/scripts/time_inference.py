from deploybench.entry import run_job
from deploybench.pipeline import time_inference

run_job(
    snakemake.log[0],
    time_inference,
    artifact_dir=snakemake.input.artifact,
    inputs_npz=snakemake.input.evaluation,
    batch=int(snakemake.wildcards.batch),
    threads=snakemake.params.threads,
    timing=snakemake.params.timing,
    options=snakemake.params.options,
    out_json=snakemake.output.timing,
    keys=snakemake.params.record_keys,
    crosscheck=snakemake.params.crosscheck,
)
