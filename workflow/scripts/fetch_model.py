import os

from deploybench.entry import run_job
from deploybench.stages.prepare import fetch_model

run_job(
    snakemake.log[0],
    fetch_model,
    spec=snakemake.params.spec,
    out_dir=os.path.dirname(snakemake.output.facts),
)
