from deploybench.entry import run_job
from deploybench.specs import ComparisonSettings, LimitSettings
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
    comparison=ComparisonSettings.from_validated(snakemake.params.comparison),
    limits=LimitSettings.from_validated(snakemake.config["limits"]),
    out_json=snakemake.output.comparison,
)
