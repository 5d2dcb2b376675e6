from deploybench.entry import run_job
from deploybench.stages.collect import collect_results

run_job(
    snakemake.log[0],
    collect_results,
    timing_paths=list(snakemake.input.timings),
    parity_paths=list(snakemake.input.parity),
    comparison_paths=list(snakemake.input.comparisons),
    artifact_dirs=list(snakemake.input.artifacts),
    skipped=snakemake.params.skipped,
    out_summary=snakemake.output.summary,
    out_latencies=snakemake.output.latencies,
    out_rounds=snakemake.output.rounds,
)
