rule fetch_model:
    input:
        unpack(model_files),
    output:
        weights="results/models/{model}/model.pt",
        facts="results/models/{model}/model.json",
    log:
        "logs/fetch_model/{model}.log",
    wildcard_constraints:
        model=_alternatives(TORCH_MODELS),
    conda:
        "../../envs/workflow.yaml"
    resources:
        slurm_partition=partition,
    params:
        spec=model_spec,
    script:
        "../scripts/fetch_model.py"


rule prepare_evaluation_inputs:
    input:
        unpack(evaluation_sources),
    output:
        evaluation="results/inputs/{model}/evaluation.npz",
    log:
        "logs/prepare_evaluation_inputs/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    resources:
        slurm_partition=partition,
    params:
        spec=model_spec,
    script:
        "../scripts/prepare_evaluation_inputs.py"


rule prepare_calibration_inputs:
    input:
        unpack(calibration_sources),
    output:
        calibration="results/inputs/{model}/calibration.npz",
    log:
        "logs/prepare_calibration_inputs/{model}.log",
    conda:
        "../../envs/workflow.yaml"
    resources:
        slurm_partition=partition,
    params:
        spec=calibration_spec,
        size=SETTINGS.inputs.calibration_size,
        seed=SETTINGS.inputs.seed,
    script:
        "../scripts/prepare_calibration_inputs.py"


rule reference_outputs:
    input:
        unpack(reference_model),
        evaluation="results/inputs/{model}/evaluation.npz",
    output:
        outputs="results/reference/{model}/outputs.npz",
    log:
        "logs/reference_outputs/{model}.log",
    conda:
        "../../envs/pytorch.yaml"
    resources:
        slurm_partition=partition,
    script:
        "../scripts/reference_outputs.py"
