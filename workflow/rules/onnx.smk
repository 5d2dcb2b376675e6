rule export_onnx:
    input:
        weights="results/models/{model}/model.pt",
    output:
        onnx="results/onnx/{model}/{shape}/exported.onnx",
        facts="results/onnx/{model}/{shape}/export.json",
    log:
        "logs/export_onnx/{model}/{shape}.log",
    benchmark:
        "benchmarks/export_onnx/{model}/{shape}.tsv"
    conda:
        "../../envs/workflow.yaml"
    params:
        exporter=config["export"]["exporter"],
        opset=config["export"]["opset"],
    script:
        "../scripts/export_onnx.py"


rule simplify_onnx:
    input:
        onnx="results/onnx/{model}/{shape}/exported.onnx",
    output:
        onnx="results/onnx/{model}/{shape}/model.onnx",
        facts="results/onnx/{model}/{shape}/simplify.json",
    log:
        "logs/simplify_onnx/{model}/{shape}.log",
    conda:
        "../../envs/workflow.yaml"
    params:
        simplifier=config["export"]["simplifier"],
    script:
        "../scripts/simplify_onnx.py"
