from deploybench.entry import run_job
from deploybench.stages.parity import check_parity

run_job(
    snakemake.log[0],
    check_parity,
    artifact_dir=snakemake.input.artifact,
    inputs_npz=snakemake.input.evaluation,
    reference_npz=snakemake.input.reference,
    key=snakemake.params.key,
    tolerance=snakemake.params.tolerance,
    spec=snakemake.params.spec,
    threads=snakemake.params.threads,
    options=snakemake.params.options,
    limits=snakemake.config["limits"],
    out_json=snakemake.output.parity,
)
