"""``visionforge demo``: the main job on real data bundled with installed packages (offline)."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  visionforge demo                        # all three jobs, results under runs/demo/
  visionforge demo --only classification  # just the digits job
  visionforge demo project_dir=/tmp/vf    # write somewhere else
  visionforge demo detection              # only the nuclei detection job on ihc.png
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train, evaluate and report on bundled real data (digits, IHC image, its nuclei)",
        description="Run the main job offline: handwritten-digit classification "
        "(scikit-learn's load_digits), immunohistochemistry segmentation "
        "(scikit-image's ihc.png) and nuclei detection in the same image, each leaving a "
        "complete run directory.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="project_dir=DIR, epochs.classification=N, "
                        "epochs.segmentation=N, epochs.detection=N; or the job name `detection`")
    parser.add_argument("--only", choices=("classification", "segmentation", "detection"),
                        help="run one job only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionforge.cli.options import parse_options

    only = args.only
    if "detection" in args.overrides:  # `visionforge demo detection`
        only = "detection"
        args.overrides = [o for o in args.overrides if o != "detection"]
    opts = parse_options(args.overrides, {"project_dir": str, "epochs.classification": int,
                                          "epochs.segmentation": int, "epochs.detection": int},
                         "demo")
    project_dir = opts.pop("project_dir", "runs/demo")
    epochs = {key.split(".")[1]: value for key, value in opts.items()}
    from visionforge.workflows.demo import run_demo

    jobs = (only,) if only else ("classification", "segmentation", "detection")
    results = run_demo(project_dir, jobs=jobs, epochs=epochs)
    print("== demo finished")
    if "classification" in results:
        r = results["classification"]
        print(f"digits test accuracy: {r['accuracy']:.4f}  ({r['run_dir']})")
    if "segmentation" in results:
        r = results["segmentation"]
        print(f"IHC held-out mean IoU: {r['heldout_full_image']['mean_iou']:.4f}  ({r['run_dir']})")
    if "detection" in results:
        r = results["detection"]
        print(f"IHC nuclei test mAP@.5: {r['map_50']:.4f}, mean relative count error "
              f"{r['count_error']:.3f}  ({r['run_dir']})")
    return 0
