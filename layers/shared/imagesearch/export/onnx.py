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


def text_is_causal(model: Any) -> bool:
    """Whether the text tower reads its output at the end-of-text token behind a causal mask (CLIP's own
    text transformer): then the padding after that token cannot change the result, and the tower may run
    on a query's own tokens. Towers that attend both ways or pool elsewhere (SigLIP-style, Hugging Face
    text encoders) keep the padded input."""
    import open_clip

    return (
        isinstance(model, open_clip.CLIP)
        and getattr(model, "attn_mask", None) is not None
        and getattr(model, "text_pool_type", None) == "argmax"
    )


class TextTower(torch.nn.Module):
    """input_ids (n, context_length) int64 -> L2-normalised text embeddings (n, dim).

    With `sequence=True` (only for a causal tower, `text_is_causal`) the input may be (n, k) for any
    k <= context_length: the ids up to the longest end-of-text token of the batch. The positions and the
    causal mask are cut to k, which is what the padded run computes for those positions."""

    def __init__(self, model: Any, *, sequence: bool = False) -> None:  # open_clip.CLIP or CustomTextCLIP
        super().__init__()
        if sequence and not text_is_causal(model):
            raise ValueError("only a causal text tower pooled at the end-of-text token runs unpadded")
        self.model = model
        self.sequence = sequence

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if not self.sequence:
            return F.normalize(self.model.encode_text(input_ids), dim=-1)
        # open_clip.CLIP.encode_text, with the positional embedding and the mask cut to the input's length
        model, length = self.model, input_ids.shape[1]
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(input_ids).to(cast_dtype)
        x = x + model.positional_embedding[:length].to(cast_dtype)
        x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
        x = model.ln_final(x)
        x = x[torch.arange(x.shape[0]), input_ids.argmax(dim=-1)]  # the end-of-text token: the highest id
        if model.text_projection is not None:
            x = (
                model.text_projection(x)
                if isinstance(model.text_projection, torch.nn.Linear)
                else x @ model.text_projection
            )
        return F.normalize(x, dim=-1)


def export_tower(
    tower: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    *,
    input_name: str,
    output_name: str,
    max_sequence: int | None = None,
) -> None:
    """Export one tower with a dynamic batch axis (the example's batch must be >= 2 so it is not fixed),
    and with `max_sequence` a dynamic second axis of 2 to that many (the example's length must be another
    number than its batch)."""
    tower = tower.eval()
    axes: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=4096)}
    if max_sequence is not None:
        axes[1] = torch.export.Dim("sequence", min=2, max=max_sequence)
    with torch.no_grad():
        program = torch.onnx.export(
            tower,
            (example,),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes={input_name: axes},
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
