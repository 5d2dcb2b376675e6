rule collect_results:
    input:
        timings=timing_targets(),
        parity=parity_targets(),
        comparisons=comparison_targets(),
        artifacts=compile_targets(),
        onnx_facts=onnx_fact_targets(),
        model_facts=model_fact_targets(),
    output:
        summary="results/summary.csv",
        latencies="results/latencies.csv",
        rounds="results/rounds.csv",
    log:
        "logs/collect_results.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        skipped=SKIPPED,
    script:
        "../scripts/collect_results.py"


rule render_report:
    input:
        summary="results/summary.csv",
        latencies="results/latencies.csv",
        rounds="results/rounds.csv",
        onnx_facts=onnx_fact_targets(),
        model_facts=model_fact_targets(),
        tuning=tuning_targets(),
    output:
        report(
            "reports/report.html",
            category="deploybench",
            caption="../report/report.rst",
        ),
    log:
        "logs/render_report.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        threads=TIMING_THREADS,
        timing=TIMING_SETTINGS,
    script:
        "../scripts/render_report.py"
