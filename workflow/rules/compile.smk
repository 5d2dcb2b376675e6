# One rule for every backend: the backend module does the work, envs/{backend}.yaml holds its
# packages, and the backend's own options reach only its jobs (params trigger).
rule compile_model:
    input:
        source=compile_source,
        calibration=compile_calibration,
        tuning=compile_tuning,
    output:
        artifact=directory("results/compiled/{model}/{backend}/{precision}/{shape}"),
    log:
        "logs/compile_model/{model}/{backend}/{precision}/{shape}.log",
    benchmark:
        "benchmarks/compile_model/{model}/{backend}/{precision}/{shape}.tsv"
    conda:
        backend_env
    resources:
        slurm_partition=partition,
        gpu=gpu_jobs,
    params:
        options=backend_options,
        version=backend_version,
        key=config_key,
    script:
        "../scripts/compile_model.py"
