"""`imagesearch model export`: the command the production bundle is made with."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from imagesearch.cli import model as model_cli
from imagesearch.model.manifest import load_manifest

from .conftest import TINY_RESNET, ExportedModel

pytestmark = pytest.mark.export


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    model_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_export_command_writes_a_bundle(resnet_export: ExportedModel) -> None:
    # the fixture ran: model export --arch tiny-rn --pretrained <checkpoint> --model-config <json> --int8
    manifest = load_manifest(resnet_export.bundle_dir)
    manifest.verify(resnet_export.bundle_dir)
    assert manifest.architecture == "tiny-rn"
    assert manifest.pretrained == "tiny-rn-weights"  # a checkpoint file is named by its stem, not its path
    assert manifest.model_id.startswith("tiny-rn-tiny-rn-weights-")
    assert manifest.variants == ["fp32", "int8"]
    assert manifest.embed_dim == TINY_RESNET["embed_dim"]
    assert f"exported {manifest.model_id}" in resnet_export.cli_output
    assert "image.int8.onnx" in resnet_export.cli_output


def test_export_refuses_a_non_empty_directory(
    resnet_export: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "model",
        "export",
        "--arch",
        "RN50",
        "--pretrained",
        "none",
        "--out",
        str(resnet_export.bundle_dir),
    ]
    assert run(argv) == 2
    assert "must be an empty directory" in capsys.readouterr().err


def test_export_refuses_unknown_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            [
                "model",
                "export",
                "--arch",
                "No-Such-Model",
                "--pretrained",
                "none",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 2
    )
    assert "has no architecture" in capsys.readouterr().err


def test_export_refuses_an_unknown_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            ["model", "export", "--arch", "RN50", "--pretrained", "no-such-tag", "--out", str(tmp_path / "b")]
        )
        == 2
    )
    assert "open_clip cannot create RN50" in capsys.readouterr().err


def test_export_refuses_other_tokenizers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = dict(TINY_RESNET, text_cfg={**TINY_RESNET["text_cfg"], "hf_tokenizer_name": "bert-base-uncased"})
    config_file = tmp_path / "hf.json"
    config_file.write_text(json.dumps(config))
    argv = ["model", "export", "--arch", "tiny-hf", "--pretrained", "none", "--out", str(tmp_path / "b")]
    assert run([*argv, "--model-config", str(config_file)]) == 2
    assert "Hugging Face tokenizer" in capsys.readouterr().err


def test_export_refuses_a_config_without_towers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "bad.json"
    config_file.write_text(json.dumps({"embed_dim": 8}))
    argv = ["model", "export", "--arch", "bad", "--pretrained", "none", "--out", str(tmp_path / "b")]
    assert run([*argv, "--model-config", str(config_file)]) == 2
    assert "lacks text_cfg, vision_cfg" in capsys.readouterr().err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    from imagesearch.cli.main import main

    with pytest.raises(SystemExit):
        main(["model", "export", "--help"])
    out = capsys.readouterr().out
    for option in ("--arch", "--pretrained", "--out", "--int8", "--model-config"):
        assert option in out
