# One export per model, batch axis dynamic; each static-batch graph is derived from it by
# fixing the batch and simplifying (same nodes, identical outputs as a static export, at a third
# of the export work).
rule export_onnx:
    input:
        weights="results/models/{model}/model.pt",
    output:
        onnx="results/onnx/{model}/exported.onnx",
        facts="results/onnx/{model}/export.json",
    log:
        "logs/export_onnx/{model}.log",
    benchmark:
        "benchmarks/export_onnx/{model}.tsv"
    wildcard_constraints:
        model=_alternatives(TORCH_MODELS),
    conda:
        "../../envs/workflow.yaml"
    resources:
        slurm_partition=partition,
    params:
        exporter=SETTINGS.export.exporter,
        opset=SETTINGS.export.opset,
    script:
        "../scripts/export_onnx.py"


# An ONNX file (source: onnx) is its own export: checked against its task's data and copied in.
rule import_onnx:
    input:
        onnx=onnx_file,
    output:
        onnx="results/onnx/{model}/exported.onnx",
        facts="results/onnx/{model}/export.json",
        model_facts="results/models/{model}/model.json",
    log:
        "logs/import_onnx/{model}.log",
    wildcard_constraints:
        model=_alternatives(ONNX_MODELS),
    conda:
        "../../envs/workflow.yaml"
    resources:
        slurm_partition=partition,
    params:
        spec=model_spec,
    script:
        "../scripts/import_onnx.py"


rule simplify_onnx:
    input:
        onnx="results/onnx/{model}/exported.onnx",
    output:
        onnx="results/onnx/{model}/{shape}/model.onnx",
        facts="results/onnx/{model}/{shape}/simplify.json",
    log:
        "logs/simplify_onnx/{model}/{shape}.log",
    conda:
        "../../envs/workflow.yaml"
    resources:
        slurm_partition=partition,
    params:
        simplifier=SETTINGS.export.simplifier,
    script:
        "../scripts/simplify_onnx.py"
