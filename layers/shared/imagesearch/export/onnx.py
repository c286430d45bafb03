"""open_clip towers -> ONNX files (fp32 with the L2 normalisation in the graph) and their int8 variants.

Measured traps (torch 2.14, onnxscript, onnxruntime 1.32): the TorchScript exporter (`dynamo=False`) fails
on the ViT image tower under no_grad (`aten::_native_multi_head_attention`), so the dynamo exporter is used
for both towers; it produces opset 18 whatever is asked, so 18 is asked. Naming the text output
`embedding` collides with an internal node name and onnxruntime then refuses the file ("Duplicate
definition of name"), hence `image_embeds` / `text_embeds`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from onnxruntime.quantization import QuantType, quantize_dynamic

ONNX_OPSET = 18
IMAGE_INPUT, IMAGE_OUTPUT = "pixel_values", "image_embeds"
TEXT_INPUT, TEXT_OUTPUT = "input_ids", "text_embeds"


class ImageTower(torch.nn.Module):
    """pixel_values (n, 3, h, w) -> L2-normalised image embeddings (n, dim)."""

    def __init__(self, model: Any) -> None:  # open_clip.CLIP or CustomTextCLIP
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(pixel_values), dim=-1)


class TextTower(torch.nn.Module):
    """input_ids (n, context_length) int64 -> L2-normalised text embeddings (n, dim)."""

    def __init__(self, model: Any) -> None:  # open_clip.CLIP or CustomTextCLIP
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_text(input_ids), dim=-1)


def export_tower(
    tower: torch.nn.Module, example: torch.Tensor, path: Path, *, input_name: str, output_name: str
) -> None:
    """Export one tower with a dynamic batch axis (the example's batch must be >= 2 so it is not fixed)."""
    tower = tower.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.onnx.export(
            tower,
            (example,),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes={input_name: {0: batch}},
            opset_version=ONNX_OPSET,
            dynamo=True,
            verbose=False,
        )
    if program is None:  # only the TorchScript exporter returns None
        raise RuntimeError("torch.onnx.export returned no program")
    # weights go to a side file `<name>.data` only when the graph passes protobuf's 2 GB limit
    program.save(str(path))


def has_external_data(path: Path) -> bool:
    """Whether an exported file keeps its weights beside it (models over 2 GB)."""
    return path.with_name(path.name + ".data").exists()


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic quantisation with signed int8 weights (QUInt8 measured clearly slower on x86 here)."""
    quantize_dynamic(
        model_input=source,
        model_output=target,
        weight_type=QuantType.QInt8,
        use_external_data_format=has_external_data(source),
    )
