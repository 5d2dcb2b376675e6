from deploybench.entry import run_job
from deploybench.specs import LimitSettings, Tolerance
from deploybench.stages.parity import check_parity

run_job(
    snakemake.log[0],
    check_parity,
    artifact_dir=snakemake.input.artifact,
    inputs_npz=snakemake.input.evaluation,
    reference_npz=snakemake.input.reference,
    key=snakemake.params.key,
    tolerance=Tolerance.from_validated(snakemake.params.tolerance),
    spec=snakemake.params.spec,
    threads=snakemake.params.threads,
    options=snakemake.params.options,
    limits=LimitSettings.from_validated(snakemake.config["limits"]),
    out_json=snakemake.output.parity,
)
