"""``visionforge pipeline``: verify, train, evaluate and export many backbones, then compare."""

from __future__ import annotations

import argparse

EXAMPLE = """pipeline keys (the rest are run-config overrides, e.g. data.root=DIR, trainer.device=cpu):
  models=[a,b,...]    backbones (registry names or aliases; default: the 15 families)
  preset=NAME         default | fast_dev_run | overfit_batch | tiny_data (conf/pipeline/)
  size=tiny|small|base  model size variant for every backbone
  head_epochs=40 finetune_epochs=25 head_lr=1e-3 finetune_lr=1e-4 patience=5
  kfold=0             k >= 2: stratified k-fold CV of the two-stage training first
  formats=all         export formats (all = pytorch,torchscript,onnx,tensorrt,coreml,tflite)
  max_per_class=N     at most N images per class in each split
  out=DIR             pipeline dir (default <project_dir>/pipeline/<name or 'pipeline'>)
  retry_failed=true   on resume, run failed backbones again

examples:
  visionforge pipeline data.root=Data/                       # all 15 backbones, 40+25 epochs
  visionforge pipeline data.root=Data/ models=[custom_convnext,custom_swin_transformer]
  visionforge pipeline data.root=Data/ preset=fast_dev_run   # one batch per stage, every backbone
  visionforge pipeline data.root=Data/ preset=tiny_data trainer.device=cpu
Running the same command again resumes: finished backbones are skipped (<out>/status.json).
Outputs: <out>/<backbone>/ (verify.json, metrics.json, plots/, train/model, export/),
<out>/comparison.csv|.md|.html and <out>/training_run_<time>.log.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="the disease-classification pipeline: many backbones, one comparison table",
        description="For each backbone: 7-step verification, stratified split (or k-fold), "
        "head training then fine-tuning with the family's LR and scheduler, test metrics and "
        "plots, export to six formats with smoke tests; then one comparison table "
        "(CSV, Markdown, HTML). A failing backbone is reported and the others continue; the "
        "same command resumes an interrupted run. See docs/pipeline.md.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("options", nargs="*", help="key=value pipeline keys and config overrides")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionforge.workflows.pipeline import run_pipeline
    from visionforge.workflows.pipeline_settings import parse_pipeline_args

    settings, overrides = parse_pipeline_args(args.options)
    result = run_pipeline(settings, overrides)
    md = result.tables[1].read_text(encoding="utf-8").splitlines()
    print("\n".join(line for line in md if line.startswith("|")))
    if result.failed:
        print(f"{len(result.failed)} of {len(result.records)} backbones failed: "
              f"{', '.join(result.failed)} (errors in {result.tables[1]} and {result.log_file})")
        return 1
    return 0
