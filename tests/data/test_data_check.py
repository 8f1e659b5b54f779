"""check_dataset and the `visionforge data` command."""

from __future__ import annotations

import json
import shutil

import numpy as np

from visionforge.cli.main import main
from visionforge.data import check_dataset


def test_data_check_clean_class_folder(class_folder):
    report = check_dataset(class_folder)
    assert report["ok"] and report["layout"] == "class_folders"
    assert report["counts"] == {"all": {"cat": 10, "dog": 10, "fish": 5}}
    st = report["image_stats"]
    assert (
        st["num_images"] == 25
        and st["channels"] == {"3": 25}
        and st["most_common_sizes"] == {"16x16": 25}
    )
    saved = json.loads((class_folder / "data_check.json").read_text())
    assert saved["counts"] == report["counts"]


def test_data_check_finds_corrupt_leakage_and_empty(tmp_path, class_folder):
    root = tmp_path / "splitted"
    for split in ("train", "val"):
        shutil.copytree(class_folder, root / split)
    for p in list((root / "val").rglob("*.png")):  # keep two files that also sit in train/
        if p.name not in ("dog_03.png", "cat_01.png"):
            p.unlink()
    (root / "val" / "fish").rmdir()
    (root / "val" / "cat" / "broken.png").write_bytes(b"not an image")
    (root / "train" / "empty_class").mkdir()
    report = check_dataset(root, tmp_path / "r.json")
    assert not report["ok"] and report["layout"] == "class_folders_splits"
    assert report["counts"]["val"] == {"cat": 2, "dog": 1}  # broken.png counts as a file
    assert [c["path"].endswith("broken.png") for c in report["corrupt"]] == [True]
    leaked = sorted(p.rsplit("/", 1)[1] for e in report["leakage"] for p in e["paths"])
    assert leaked == ["cat_01.png", "cat_01.png", "dog_03.png", "dog_03.png"]
    assert any("empty_class" in e for e in report["errors"])
    assert (tmp_path / "r.json").is_file()


def test_data_check_segmentation_histogram(seg_folder, write_image):
    report = check_dataset(seg_folder, num_classes=3)
    assert report["ok"] and report["mask_histogram"] == {"0": 6 * 172, "1": 6 * 48, "2": 6 * 36}
    m = np.zeros((16, 16), np.uint8)
    m[0, 0] = 9
    write_image(seg_folder / "masks" / "s1.png", m)
    (seg_folder / "masks" / "s2.png").unlink()
    report = check_dataset(seg_folder, num_classes=3)
    assert not report["ok"]
    assert any("s1.png: mask values [9]" in e for e in report["errors"])
    assert any("s2.png: no mask" in e for e in report["errors"])


def test_data_cli_check_and_split(tmp_path, class_folder, capsys):
    assert main(["data", "check", str(class_folder), "--out", str(tmp_path / "rep.json")]) == 0
    assert "cat=10" in capsys.readouterr().out
    (class_folder / "dog" / "bad.png").write_bytes(b"xx")
    assert main(["data", "check", str(class_folder)]) == 1
    assert "bad.png" in capsys.readouterr().out
    (class_folder / "dog" / "bad.png").unlink()
    out = tmp_path / "m.csv"
    assert (
        main(["data", "split", str(class_folder), "ratios=0.6,0.2,0.2", "seed=1", f"out={out}"])
        == 0
    )
    assert "train=15" in capsys.readouterr().out
    first = out.read_bytes()
    assert (
        main(
            [
                "data",
                "split",
                str(class_folder),
                "ratios=0.6,0.2,0.2",
                "seed=1",
                f"out={out}",
                "--copy",
                str(tmp_path / "copy"),
            ]
        )
        == 0
    )
    assert out.read_bytes() == first
    assert len(list((tmp_path / "copy" / "test").rglob("*.png"))) == 5
    assert main(["data", "split", str(class_folder), "bogus=1"]) == 2
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
