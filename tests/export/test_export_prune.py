"""Global magnitude pruning: sparsity reached, accuracy measured before/after, CLI and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from visionforge.errors import ConfigError
from visionforge.export.prune import prune_global, sparsity


def _folder(root, n=4, size=32):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "bird"):
        for i in range(n):
            p = root / name / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(p)
    return root


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    """A small_cnn classifier dir (cat/dog/bird, 32 px): quick to load, score and save."""
    from visionforge.models import create_model
    from visionforge.models.model_dir import save_model_dir

    torch.manual_seed(0)
    return save_model_dir(
        create_model("small_cnn", num_classes=3, width=8, depth=2).eval(),
        tmp_path_factory.mktemp("prune") / "model", task="classification",
        class_names=["cat", "dog", "bird"], input_size=[3, 32, 32],
        preprocessing={"input_range": [0, 1], "mean": None, "std": None})


def test_prune_global_reaches_the_amount_and_keeps_largest_weights():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    weights = torch.cat([net[0].weight.detach().flatten(), net[2].weight.detach().flatten()]).abs()
    threshold = weights.sort().values[int(0.6 * len(weights)) - 1]
    r = prune_global(net, 0.6)
    assert r["sparsity"] == pytest.approx(0.6, abs=1 / len(weights))
    kept = torch.cat([net[0].weight.flatten(), net[2].weight.flatten()])
    assert bool((kept[kept != 0].abs() >= threshold).all())  # one global magnitude threshold
    assert not any("weight_orig" in k for k in net.state_dict())  # permanent: plain weights
    assert sparsity(net)["sparsity"] == r["sparsity"]
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        prune_global(net, 1.5)


def test_prune_model_dir_reports_accuracy_before_after(small_dir, tmp_path):
    from visionforge.inference.files import labelled_folder
    from visionforge.models.model_dir import load_model, read_model_meta
    from visionforge.workflows.prune import prune_model_dir, score_model

    data = _folder(tmp_path / "val")
    r0 = prune_model_dir(small_dir, data, 0.0, out=tmp_path / "p0")
    assert r0["accuracy_before"] == r0["accuracy_after"]  # nothing pruned, same predictions
    r = prune_model_dir(small_dir, data, 0.5, out=tmp_path / "p50")
    assert r["n_samples"] == 12 and r["sparsity_after"] == pytest.approx(0.5, abs=1e-3)
    # the "after" figure is the pruned model dir's real accuracy on the same data
    pruned = load_model(tmp_path / "p50")
    meta = read_model_meta(tmp_path / "p50")
    x, y = labelled_folder(data, meta)
    assert score_model(pruned, x, y, "classification") == pytest.approx(r["accuracy_after"])
    expected = 100 * float(np.mean(
        pruned(torch.from_numpy(x)).argmax(1).numpy() == y))
    assert r["accuracy_after"] == pytest.approx(expected)
    assert meta["pruning"]["amount"] == 0.5
    assert (tmp_path / "p50" / "prune_report.json").is_file()


def test_prune_cli(small_dir, tmp_path, capsys):
    from visionforge.cli.main import main

    data = _folder(tmp_path / "val", n=2)
    assert main(["prune", str(small_dir), str(data), "amount=0.3",
                 f"out={tmp_path / 'out'}"]) == 0
    out = capsys.readouterr().out
    assert "accuracy on 6 samples" in out and "sparsity" in out
    code = main(["prune", str(small_dir), str(data), "amount=2"])
    err = capsys.readouterr().err
    assert code != 0 and "amount" in err and "Traceback" not in err
