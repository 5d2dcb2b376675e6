from deploybench.entry import run_job
from deploybench.stages.compare import compare_configs

run_job(
    snakemake.log[0],
    compare_configs,
    artifact_dirs=list(snakemake.input.artifacts),
    inputs_npz=snakemake.input.evaluation,
    model=snakemake.wildcards.model,
    device=snakemake.wildcards.device,
    configs=snakemake.params.configs,
    batch=int(snakemake.wildcards.batch),
    threads=snakemake.params.threads,
    comparison=snakemake.params.comparison,
    limits=snakemake.config["limits"],
    out_json=snakemake.output.comparison,
)
