"""``visionforge serve``: an HTTP API for one or more model dirs."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  visionforge serve runs/digits/model --port 8000
  visionforge serve models/tissue/ digits=runs/digits/model --api-key s3cret
  curl -F file=@cell.png http://127.0.0.1:8000/predict
  visionforge serve runs/demo/*/*/model --project-dir runs/demo --slides-dir slides_out
    then open http://127.0.0.1:8000/ (models, try it, slides, runs)
  visionforge serve models/digits/ --ab digits=1:90,2:10   # A/B: /ab/digits/predict, GET /ab/digits
A folder of version sub-folders (models/tissue/v1, v2, ...) serves every version; the
default is the latest. The API key may also come from VISIONFORGE_API_KEY.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve model dirs over HTTP (FastAPI)",
        description="Serve model dirs: /health, /models, /predict, /predict/batch, /segment.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dirs", nargs="+", help="model dirs, version folders or name=dir")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=None, help="require this X-API-Key header")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="request size limit")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, help="image pixel limit")
    parser.add_argument("--backend", default="auto",
                        choices=("auto", "torch", "onnxruntime", "openvino"))
    parser.add_argument("--ab", action="append", default=[], metavar="NAME=V1:W1,V2:W2",
                        help="A/B split of a model's traffic over versions, e.g. digits=1:90,2:10")
    parser.add_argument("--slides-dir", default=None,
                        help="web page: browse this out= folder of 'visionforge slides segment'")
    parser.add_argument("--project-dir", default=None,
                        help="web page: browse the runs under this project_dir of 'visionforge train'")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=8,
        help="dynamic batching: images per shared forward pass (1 = off; default 8)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="dynamic batching: how long a request waits for others (default 5 ms)",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=64,
        help="dynamic batching: images that may wait; beyond it 503 + Retry-After (default 64)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionforge.serve import create_app, run_server
    from visionforge.serve.ab import parse_ab

    ab = dict(parse_ab(spec) for spec in args.ab)
    app = create_app(
        args.model_dirs,
        api_key=args.api_key,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        backend=args.backend,
        ab=ab or None,
        slides_dir=args.slides_dir,
        project_dir=args.project_dir,
        batching={
            "max_batch": args.max_batch,
            "max_wait_ms": args.max_wait_ms,
            "max_queue": args.queue,
        },
    )
    for m in app.state.store.all():
        print(f"serving {m.name} v{m.version} ({m.predictor.task}, backend {m.predictor.backend})")
    print(f"web page: http://{args.host}:{args.port}/   API docs: http://{args.host}:{args.port}/docs")
    run_server(app, host=args.host, port=args.port)
    return 0
