"""nnTraining2 configs: translation, ensemble, and a run on generated OSDB events."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest

from visionforge.errors import ConfigError
from visionforge.interop.nntraining2 import (
    binary_counts,
    ensemble_probabilities,
    event_level_predictions,
    run_nntraining2,
    translate_config,
)


def _config(files, framework="pytorch", **model):
    return {
        "osdbConfig": {"osdbFiles": files, "cacheDir": "~/osd/cache"},
        "dataProcessing": {
            "window": 250,
            "step": 125,
            "noiseAugmentationFactor": 1,
            "noiseAugmentationValue": 5,
            "testProp": 0.34,
            "validationProp": 0.17,
            "mgToG": True,
            "unknownThing": 1,
        },
        "modelConfig": {
            "framework": framework,
            "modelClass": "nnTraining2.deepEpiCnnModel.DeepEpiCnnModel",
            "modelFname": "deepEpiCnn",
            "epochs": 8,
            "batchSize": 16,
            "lrStart": 3e-3,
            "lrFactor": 0.5,
            "lrPatience": 2,
            "lrMin": 1e-5,
            "earlyStoppingPatience": 5,
            "useAdamW": True,
            "weightDecay": 1e-4,
            **model,
        },
        "randomSeed": 3,
    }


def test_interop_translate_config_maps_keys_and_lists_ignored(tmp_path):
    settings, ignored = translate_config(_config(["events.json"]), base_dir=tmp_path)
    assert settings["model"] == "deepepicnn" and settings["framework"] == "pytorch"
    assert settings["lr"] == 3e-3 and settings["plateau_factor"] == 0.5 and settings["use_adamw"]
    assert settings["window"] == 250 and settings["noise_factor"] == 1 and settings["seed"] == 3
    assert settings["osdb_files"] == [str(tmp_path / "events.json")]
    assert ignored == ["dataProcessing.unknownThing", "osdbConfig.cacheDir"]
    with pytest.raises(ConfigError, match="modelClass"):
        translate_config(_config([], modelClass="foo.bar.Transformer"))
    with pytest.raises(ConfigError, match="framework"):
        translate_config(_config([], framework="jax"))
    with pytest.raises(ConfigError, match="modelConfig"):
        translate_config({"dataProcessing": {}})


def test_interop_counts_event_level_and_hd_ensemble():
    c = binary_counts([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    assert (c["tp"], c["fn"], c["fp"], c["tn"]) == (1, 1, 1, 2)
    assert c["tpr"] == 0.5 and c["fpr"] == pytest.approx(1 / 3)
    true, pred = event_level_predictions(
        np.array([0.1, 0.9, 0.2, 0.3]), np.array([1, 1, 0, 0]), np.array(["a", "a", "b", "b"]), 0.5
    )
    assert true.tolist() == [1, 0] and pred.tolist() == [1, 0]
    probs = np.random.default_rng(0).random((5, 7))
    np.testing.assert_allclose(ensemble_probabilities(probs, "mean"), probs.mean(0))
    from scipy.stats.mstats import hdquantiles

    hd = ensemble_probabilities(probs, "hd", 0.5)
    np.testing.assert_allclose(
        hd, [float(hdquantiles(probs[:, j], prob=[0.5])[0]) for j in range(7)]
    )
    assert not np.allclose(hd, np.median(probs, axis=0))  # a real HD estimate, not the median
    with pytest.raises(ConfigError, match="mean"):
        ensemble_probabilities(probs, "max")


@pytest.mark.slow
def test_interop_nntraining2_config_run_on_osdb_events(tmp_path, osdb_events):
    events = osdb_events(n_seizure=8, n_normal=10)
    (tmp_path / "events.json").write_text(json.dumps(events))
    cfg_path = tmp_path / "nnConfig.json"
    cfg_path.write_text(json.dumps(_config(["events.json"])))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_nntraining2(cfg_path, tmp_path / "run", verbose=False)
    assert any("unknownThing" in str(w.message) for w in caught)
    saved = json.loads((tmp_path / "run" / "testResults.json").read_text())
    assert saved == json.loads(json.dumps(result))
    for level in ("datapoint", "event"):
        r = saved[level]
        assert {"tpr", "fpr", "tp", "fp", "tn", "fn"} <= set(r)
        assert r["tp"] + r["fn"] > 0 and r["fp"] + r["tn"] > 0
    assert (
        saved["event"]["tp"] + saved["event"]["fp"] + saved["event"]["tn"] + saved["event"]["fn"]
        == saved["n_events"]
    )
    # the generated seizures are easy: the trained model finds them
    assert saved["datapoint"]["accuracy"] >= 0.8
    translated = json.loads((tmp_path / "run" / "config_translated.json").read_text())
    assert translated["settings"]["framework"] == "pytorch"
    assert (tmp_path / "run" / "model" / "model.json").is_file()


@pytest.mark.slow
def test_interop_nntraining2_kfold_hd_ensemble(tmp_path, osdb_events):
    events = osdb_events(n_seizure=8, n_normal=8, seed=1)
    result = run_nntraining2(
        _config([]),
        tmp_path / "kf",
        kfold=2,
        ensemble="hd",
        events=events,
        overrides={"epochs": 2},
        verbose=False,
    )
    summary = json.loads((tmp_path / "kf" / "kfold_summary.json").read_text())
    assert len(summary["folds"]) == 2 and "mean" in summary["event"]["tpr"]
    assert result["ensemble"]["method"] == "hd"
    assert (tmp_path / "kf" / "fold_1" / "testResults.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason='needs pip install "visionforge[tf]"'
)
def test_interop_nntraining2_tensorflow_framework(tmp_path, osdb_events):
    events = osdb_events(n_seizure=6, n_normal=6, seed=2)
    result = run_nntraining2(
        _config([], framework="tensorflow"),
        tmp_path / "tf",
        events=events,
        overrides={"epochs": 2},
        verbose=False,
    )
    assert result["framework"] == "tensorflow"
    assert (tmp_path / "tf" / "deepEpiCnn.keras").is_file()
    saved = json.loads((tmp_path / "tf" / "testResults.json").read_text())
    assert saved["n_events"] == result["n_events"] and "tpr" in saved["event"]
