"""The ``prompt:`` block of plugin.yaml for ``task: promptable`` (docs/PLUGINS.md, "Promptable
segmentation"). Two shapes of model:

- ``kind: encoder_decoder`` (SAM, MobileSAM, EfficientSAM, EdgeSAM): ``model.file`` is the image encoder,
  run once per image/slice (its output cached); ``prompt.decoder`` is the prompt decoder run per click.
- ``kind: channels`` (RITM, DEXTR style): ``model.file`` takes the image plus click maps (and the previous
  mask) as extra input channels, on a crop around the clicks.

Additions only: schema_version stays 1; every field has a default except ``kind`` (and the decoder file).
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DecoderFile(_Strict):
    """``prompt.decoder:`` the decoder's ONNX file and checksum."""

    file: str = Field(min_length=1)
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be the 64 hex digits of the decoder file's SHA-256")
        return value


class DecoderInputs(_Strict):
    """``prompt.inputs:`` the decoder's input names (SAM's ONNX export as defaults); null = not an input."""

    embedding: str = "image_embeddings"
    point_coords: str = "point_coords"
    point_labels: str = "point_labels"
    mask_input: str | None = "mask_input"
    has_mask_input: str | None = "has_mask_input"
    orig_im_size: str | None = "orig_im_size"


class DecoderOutputs(_Strict):
    """``prompt.outputs:`` the decoder's output names; ``scores`` picks the best of several masks."""

    masks: str = "masks"
    scores: str | None = "iou_predictions"
    low_res: str | None = "low_res_masks"


class PromptSpec(_Strict):
    """``prompt:`` how clicks and boxes reach the model and how its mask comes back."""

    kind: Literal["encoder_decoder", "channels"]
    size: int = Field(1024, ge=8)  # the square model input (longest side after the resize)
    pad: Literal["bottom_right", "center"] = "bottom_right"
    isotropic: bool = True  # resize by physical size (pixel spacing): anisotropic pixels become square
    mask_threshold: float = 0.0  # on the mask logits
    # -- encoder_decoder
    decoder: DecoderFile | None = None
    embedding: str | None = None  # the encoder output to keep; default: its first output
    inputs: DecoderInputs = Field(default_factory=DecoderInputs)
    outputs: DecoderOutputs = Field(default_factory=DecoderOutputs)
    masks_frame: Literal["model", "original"] = "model"  # original: the decoder returns orig_im_size masks
    mask_input_size: int = Field(256, ge=1)  # side of the previous-logits input (SAM: 256)
    box_labels: list[int] = Field(default_factory=lambda: [2, 3])  # point labels of a box's two corners
    pad_point: bool = True  # SAM: one (0, 0) point labelled -1 when no box is given
    # -- channels
    encoding: Literal["disk", "distance"] = "disk"
    radius: float = Field(5.0, gt=0)  # model pixels
    previous_mask: bool = True  # the previous mask is the last input channel
    context: float = Field(0.4, ge=0)  # crop margin: times the extent of the previous mask / box / clicks
    min_size: int = Field(32, ge=4)  # smallest crop, image pixels
    first_size: int | None = Field(None, ge=8)  # a lone first click: the whole image, or this square

    @field_validator("box_labels")
    @classmethod
    def _two(cls, value):
        if len(value) != 2:
            raise ValueError("must be the two point labels of a box's top-left and bottom-right corners")
        return value


def check_prompt_spec(spec) -> None:
    """Task rules: ``task: promptable`` needs ``prompt:`` (and the decoder file for encoder_decoder); the
    block is refused on other tasks. Raises the manifest's PluginError naming the field."""
    from .. import spec as spec_mod

    prompt = spec.prompt
    if spec.task != "promptable":
        if prompt is not None:
            raise spec.error("prompt", f"only for task promptable, not {spec.task}")
        return
    if prompt is None:
        raise spec.error("prompt", "required for task promptable (kind: encoder_decoder or channels)")
    if prompt.kind == "encoder_decoder":
        if prompt.decoder is None:
            raise spec.error("prompt.decoder", "required for kind encoder_decoder (file and sha256)")
        path = spec.folder / prompt.decoder.file
        if not spec_mod._inside(spec.folder, path):
            raise spec.error("prompt.decoder.file", f"{prompt.decoder.file!r} resolves outside the plugin folder")
        if not path.is_file():
            raise spec.error("prompt.decoder.file", f"{prompt.decoder.file!r} not found in the plugin folder")
    if spec.input.layout != "NCHW":
        raise spec.error("input.layout", "promptable models take NCHW inputs")
