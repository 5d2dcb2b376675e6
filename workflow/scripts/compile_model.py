from deploybench.entry import run_job
from deploybench.pipeline import compile_artifact

run_job(
    snakemake.log[0],
    compile_artifact,
    backend=snakemake.wildcards.backend,
    precision=snakemake.wildcards.precision,
    source=snakemake.input.source,
    calibration_npz=snakemake.input.calibration or None,
    options=snakemake.params.options,
    out_dir=snakemake.output.artifact,
    keys=snakemake.params.record_keys,
)
