from deploybench.entry import run_job
from deploybench.stages.report import render_report

run_job(
    snakemake.log[0],
    render_report,
    summary_csv=snakemake.input.summary,
    latencies_csv=snakemake.input.latencies,
    rounds_csv=snakemake.input.rounds,
    onnx_fact_paths=list(snakemake.input.onnx_facts),
    model_fact_paths=list(snakemake.input.model_facts),
    tuning_dirs=list(snakemake.input.tuning),
    timing=snakemake.params.timing,
    threads=snakemake.params.threads,
    selection=snakemake.params.selection,
    out_html=snakemake.output[0],
)
