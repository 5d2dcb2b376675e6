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
        slurm_partition=partition,
        slurm_extra=EXCLUSIVE_NODE,
        timing_slot=1,
        gpu=gpu_jobs,
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
    resources:
        slurm_partition=partition,
        gpu=gpu_jobs,
    params:
        tolerance=parity_tolerance,
        spec=model_spec,
        threads=TIMING_THREADS,
        options=backend_options,
        version=backend_version,
        key=config_key,
    script:
        "../scripts/check_parity.py"


# One per model, device and batch size: every configuration side by side in interleaved rounds,
# against that device's baseline. Like a timing job it takes every core and the timing slot.
rule compare_configs:
    input:
        artifacts=comparison_artifacts,
        evaluation="results/inputs/{model}/evaluation.npz",
    output:
        comparison="results/comparisons/{model}/{device}/b{batch}.json",
    log:
        "logs/compare_configs/{model}/{device}/b{batch}.log",
    benchmark:
        "benchmarks/compare_configs/{model}/{device}/b{batch}.tsv"
    conda:
        compare_env
    threads: workflow.cores
    resources:
        slurm_partition=partition,
        slurm_extra=EXCLUSIVE_NODE,
        timing_slot=1,
        gpu=gpu_jobs,
    params:
        configs=comparison_configs,
        comparison=COMPARISON_SETTINGS,
        threads=TIMING_THREADS,
    script:
        "../scripts/compare_configs.py"
