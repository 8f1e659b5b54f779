"""``visionforge slides``: tiles end to end, --help of every subcommand, errors without traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from visionforge.cli.main import main


@pytest.mark.parametrize("sub", ["tiles", "calibrate", "segment", "report"])
def test_cli_slides_help_has_an_example(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["slides", sub, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert f"visionforge slides {sub} " in text and "keys:" in text


def test_cli_slides_group_lists_subcommands(capsys):
    assert main(["slides"]) == 2
    out = capsys.readouterr().out
    assert all(s in out for s in ("tiles", "calibrate", "segment", "report"))


def test_cli_slides_tiles_writes_dataset(ihc_slide, tmp_path, capsys):
    out = tmp_path / "tiles"
    code = main(["slides", "tiles", str(ihc_slide.slide), f"out={out}",
                 f"class_map={ihc_slide.class_map_path}", "mode=simple", "tile_size=128",
                 "downsample=4", "tile_count=4", "fmt=tif", "rotate=false", "seed=2",
                 "holdout=right:0.5"])
    assert code == 0
    assert "wrote 4 train + 1 val tiles" in capsys.readouterr().out
    meta = json.loads((out / "tiles.json").read_text())
    assert meta["holdout"] == {"ihc": [1024, 0, 1024, 2048]} and meta["format"] == "tif"
    assert meta["rotate"] is False and meta["downsample"] == 4
    assert len(list((out / "train" / "images").glob("*.tif"))) == 4


def test_cli_slides_errors_exit_nonzero_without_traceback(ihc_slide, tmp_path, capsys):
    assert main(["slides", "tiles", str(ihc_slide.slide), f"out={tmp_path / 'o'}"]) == 2
    assert "class_map= is required" in capsys.readouterr().err
    assert main(["slides", "tiles", str(ihc_slide.slide), f"out={tmp_path / 'o'}",
                 f"class_map={ihc_slide.class_map_path}", "tile_size=big"]) == 2
    assert "tile_size='big' is not a valid int" in capsys.readouterr().err
    assert main(["slides", "tiles", str(ihc_slide.slide), f"out={tmp_path / 'o'}",
                 f"class_map={ihc_slide.class_map_path}", "colour=red"]) == 2
    assert "unknown option 'colour'" in capsys.readouterr().err
    missing = tmp_path / "missing.svs"
    missing_cm = tmp_path / "nope.yaml"
    proc = subprocess.run([sys.executable, "-m", "visionforge.cli.main", "slides", "tiles",
                           str(missing), f"out={tmp_path / 'o2'}", f"class_map={missing_cm}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "nope.yaml" in proc.stderr
