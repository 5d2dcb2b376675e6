# TVM's MetaSchedule tuning, one job per model over all its static-batch graphs. Its database
# is the compile's input: a changed budget re-tunes and recompiles that model's TVM
# configurations only, a changed TVM compile option recompiles without re-tuning. Tuning times
# candidate schedules, so like a timing job it takes every core and the timing slot.
rule tune_tvm:
    input:
        graphs=tuning_graphs,
        evaluation="results/inputs/{model}/evaluation.npz",
    output:
        tuning=directory("results/tuning/{model}/tvm"),
    log:
        "logs/tune_tvm/{model}.log",
    benchmark:
        "benchmarks/tune_tvm/{model}.tsv"
    conda:
        "../../envs/tvm.yaml"
    threads: workflow.cores
    resources:
        slurm_partition=partition,
        slurm_extra=EXCLUSIVE_NODE,
        timing_slot=1,
    params:
        tuning=tvm_tuning_settings,
        threads=TIMING_THREADS,
        version=tvm_version,
    script:
        "../scripts/tune_tvm.py"
