# Timing jobs take every core Snakemake was given, so nothing else runs beside them, and hold
# the timing_slot resource (capped at 1 by the profiles) so two timings never overlap anywhere.
rule time_inference:
    input:
        artifact="results/compiled/{model}/{backend}/{precision}/{shape}",
        evaluation="results/inputs/{model}/evaluation.npz",
    output:
        timing="results/timings/{model}/{backend}/{precision}/{shape}/b{batch}.json",
    log:
        "logs/time_inference/{model}/{backend}/{precision}/{shape}/b{batch}.log",
    benchmark:
        "benchmarks/time_inference/{model}/{backend}/{precision}/{shape}/b{batch}.tsv"
    conda:
        backend_env
    threads: workflow.cores
    resources:
        timing_slot=1,
    params:
        timing=TIMING_SETTINGS,
        crosscheck=crosscheck_settings,
        threads=TIMING_THREADS,
        options=backend_options,
        version=backend_version,
        key=config_key,
    script:
        "../scripts/time_inference.py"


rule check_parity:
    input:
        artifact="results/compiled/{model}/{backend}/{precision}/{shape}",
        evaluation="results/inputs/{model}/evaluation.npz",
        reference="results/reference/{model}/outputs.npz",
    output:
        parity="results/parity/{model}/{backend}/{precision}/{shape}.json",
    log:
        "logs/check_parity/{model}/{backend}/{precision}/{shape}.log",
    conda:
        backend_env
    params:
        tolerance=parity_tolerance,
        threads=TIMING_THREADS,
        options=backend_options,
        version=backend_version,
        key=config_key,
    script:
        "../scripts/check_parity.py"
