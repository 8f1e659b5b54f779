"""Report HTML parsed for sections and embedded figures; PDF written; plots non-empty."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import numpy as np
import pytest

from visionforge.evaluation import build_run_report, plots, render_report
from visionforge.evaluation.report import SECTIONS

PNG = b"\x89PNG\r\n\x1a\n"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.images.append(a)

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8"))
    return p


HISTORY = {
    "train_loss": [1.0, 0.7, 0.5],
    "val_loss": [1.1, 0.8, 0.6],
    "val_metrics": {"accuracy": [0.4, 0.6, 0.7]},
    "lr": [1e-3, 5e-4, 1e-4],
}
METRICS = {
    "task": "classification",
    "accuracy": 0.75,
    "f1_macro": 0.7,
    "class_names": ["cat", "dog"],
    "per_class": {"precision": [0.8, 0.7], "recall": [0.7, 0.8], "f1": [0.75, 0.75]},
    "confusion_matrix": [[7, 3], [2, 8]],
    "runtime": {"seconds": 0.5, "samples": 20},
}


@pytest.fixture
def run_dir(tmp_path):
    rd = tmp_path / "run"
    (rd / "model").mkdir(parents=True)
    (rd / "history.json").write_text(json.dumps(HISTORY))
    (rd / "metrics.json").write_text(json.dumps(METRICS))
    (rd / "model" / "model.json").write_text(
        json.dumps(
            {"name": "tiny", "kwargs": {}, "task": "classification", "class_names": ["cat", "dog"]}
        )
    )
    plots.plot_confusion_matrix(
        METRICS["confusion_matrix"], ["cat", "dog"], rd / "plots" / "confusion_matrix.png"
    )
    rng = np.random.default_rng(0)
    plots.plot_classification_samples(
        rng.random((3, 3, 16, 16)),
        [0, 1, 1],
        [0, 0, 1],
        [0.9, 0.6, 0.8],
        ["cat", "dog"],
        rd / "plots" / "sample_predictions.png",
    )
    plots.plot_roc_curves(
        rng.dirichlet([1, 1], 20),
        rng.integers(0, 2, 20),
        ["cat", "dog"],
        rd / "plots" / "roc_curves.png",
    )
    return rd


def test_build_run_report_sections_and_embedded_images(run_dir):
    report = build_run_report(run_dir, pdf=True)
    assert (run_dir / "plots" / "training_curves.png").is_file()  # drawn from history.json
    parsed = _parse(report)
    for section in SECTIONS:
        if section != "explanations":
            assert section in parsed.sections, section
    assert "explanations" not in parsed.sections  # nothing was explained
    alts = {img["alt"] for img in parsed.images}
    assert {"training curves", "confusion matrix", "sample predictions", "roc curves"} <= alts
    for img in parsed.images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == PNG
    text = " ".join(parsed.text)
    assert "f1_macro" in text and "dog" in text and "torch" in text
    pdf = run_dir / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000


def test_report_explanations_section_and_escaping(tmp_path, run_dir):
    plots.plot_per_class_iou(
        [0.5, float("nan")], None, tmp_path / "explanations" / "x_grad_cam.png"
    )
    out = render_report(
        tmp_path / "r.html",
        title="<script>alert(1)</script>",
        config="model: resnet18\n",
        explanations=[tmp_path / "explanations" / "x_grad_cam.png"],
        explanation_notes=["attention: skipped (not a ViT)"],
    )
    parsed = _parse(out)
    assert "explanations" in parsed.sections
    assert "<script>" not in out.read_text().split("<body>")[1]
    assert "attention: skipped (not a ViT)" in " ".join(parsed.text)


def test_plots_written_and_non_empty(tmp_path):
    rng = np.random.default_rng(1)
    files = [
        plots.plot_training_curves(HISTORY, tmp_path / "curves.png"),
        plots.plot_confusion_matrix(rng.integers(0, 20, (12, 12)), None, tmp_path / "cm.png"),
        plots.plot_per_class_iou(
            [0.2, 0.9, float("nan")],
            ["a", "b", "c"],
            tmp_path / "iou.png",
            dice=[0.3, 0.95, float("nan")],
        ),
        plots.plot_segmentation_samples(
            rng.random((2, 3, 16, 16)),
            rng.integers(0, 3, (2, 16, 16)),
            rng.integers(0, 3, (2, 16, 16)),
            ["bg", "x", "y"],
            tmp_path / "seg.png",
        ),
        plots.plot_event_probabilities(
            ["a", "b", "c"], [0.2, 0.7, 0.9], [False, True, True], tmp_path / "events.png"
        ),
    ]
    for f in files:
        assert f.read_bytes()[:8] == PNG and f.stat().st_size > 2000
    with pytest.raises(ValueError, match="history"):
        plots.plot_training_curves({}, tmp_path / "none.png")


SEG_METRICS = {
    "split": "test",
    "task": "segmentation",
    "pixel_accuracy": 0.03,
    "mean_iou": 0.01,
    "per_class_iou": [0.03, 0.0, 0.0],
    "support": [3, 60, 37],
    "class_names": ["0", "1", "2"],
    "confusion_matrix": [[3, 0, 0], [60, 0, 0], [37, 0, 0]],
    "warnings": ["collapsed: predicts class 0 for every pixel"],
}
CONFIG = {
    "task": "segmentation",
    "model": {"name": "unet"},
    "data": {"root": "/d", "window": 750, "step": 125, "image_size": 64, "masks_dir": "m"},
}


def _seg_run(tmp_path, names):
    rd = tmp_path / "segrun"
    (rd / "model").mkdir(parents=True)
    (rd / "metrics.json").write_text(json.dumps(SEG_METRICS))
    (rd / "history.json").write_text(json.dumps(HISTORY))
    meta = {"name": "unet", "task": "segmentation", "class_names": names}
    (rd / "model" / "model.json").write_text(json.dumps(meta))
    return rd


def test_report_order_warnings_verdict_and_collapsed_task_config(tmp_path):
    rd = _seg_run(tmp_path, ["bg", "tumour", "stroma"])
    html = build_run_report(rd, config=CONFIG).read_text(encoding="utf-8")
    body = html.split("<body>")[1]
    # warnings first, then the summary; the config last and inside <details>
    assert body.index("collapsed: predicts class 0") < body.index('id="summary"')
    order = [body.index(f'id="{s}"') for s in ("summary", "training-curves", "metrics", "config")]
    assert order == sorted(order)
    config_part = body[body.index('id="config"') :]
    assert config_part.index("<details>") < config_part.index("data.root")
    assert "data.window" not in body and "data.step" not in body  # signal keys, image run
    assert "data.masks_dir" in body
    parsed = _parse(rd / "report.html")
    text = " ".join(parsed.text)
    assert "NOT better than always predicting the most common class (0.600)" in text
    assert "best epoch 3 of 3" in text  # val_loss is lowest in the last epoch
    rows = [t.strip() for t in parsed.text if t.strip()]
    assert {"bg", "tumour", "stroma"} <= set(rows)  # per-class rows named, not 0/1/2


def test_report_segmentation_index_names_are_labelled(tmp_path):
    rd = _seg_run(tmp_path, ["0", "1", "2"])
    rows = [t.strip() for t in _parse(build_run_report(rd)).text]
    assert "0 background" in rows and "2 class 2" in rows and "1" not in rows


def test_report_of_a_signal_run_keeps_signal_keys(tmp_path):
    cfg = {**CONFIG, "task": "signal"}
    out = render_report(tmp_path / "r.html", config=cfg, metrics={"task": "signal", "f1": 0.5})
    html = out.read_text()
    assert "data.window" in html and "data.masks_dir" not in html
    assert 'id="dataset"' not in html and 'id="sample-predictions"' not in html  # no empty sections


def test_training_curves_integer_epochs_and_best_epoch(tmp_path, monkeypatch):
    captured = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: captured.setdefault("fig", fig))
    hist = {**HISTORY, "val_loss": [1.1, 0.5, 0.6], "val_epoch": [0, 1, 2]}
    assert plots.best_epoch(hist) == 2
    assert plots.best_epoch({**hist, "best": {"best_val_accuracy": 0.7}}) == 3
    plots.plot_training_curves(hist, tmp_path / "c.png")
    fig = captured["fig"]
    fig.canvas.draw()
    for ax in [a for a in fig.axes if a.get_visible()]:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ax.get_title()
        assert any(line.get_label() == "best epoch 2" for line in ax.get_lines())


def test_explanation_figure_original_beside_overlays_with_colour_bar(tmp_path, monkeypatch):
    captured = {}
    real_save = plots.save_figure
    monkeypatch.setattr(
        plots,
        "save_figure",
        lambda fig, path: captured.setdefault("fig", fig) and real_save(fig, path),
    )
    rng = np.random.default_rng(0)
    heat = {"grad_cam": rng.random((8, 8)), "saliency": rng.random((32, 32))}
    out = plots.plot_explanation(rng.random((3, 32, 32)), heat, tmp_path / "e.png", title="x")
    fig = captured["fig"]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["original", "grad cam", "saliency"]
    assert any("attribution" in ax.get_ylabel() for ax in fig.axes)  # the colour bar
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] >= 800 and im.size[1] >= 300  # readable, not the 32 px overlay
    # an explain-only report has no empty sections
    html = render_report(tmp_path / "r.html", explanations=[out]).read_text()
    for empty in ("summary", "training-curves", "metrics", "dataset", "runtimes", "config"):
        assert f'id="{empty}"' not in html, empty
