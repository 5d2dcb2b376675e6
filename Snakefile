# deploybench: for your model on your hardware, which backend and precision is fastest, and do
# its outputs still match PyTorch? Run: snakemake --cores 2 report
from snakemake.utils import min_version

min_version("9.0")


# The default experiment, unless the user names their own with --configfile: Snakemake would
# merge the two key by key, so a user's file listing its own models would still run ours.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/onnx.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/compile.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/report.smk"


rule report:
    default_target: True
    input:
        "reports/report.html",


rule summary:
    input:
        "results/summary.csv",
