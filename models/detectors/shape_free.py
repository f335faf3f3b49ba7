"""Free a fixed-shape detector graph: any batch, height and width (SCRFD exports pin 1 x 3 x 640 x 640).

The bundled SCRFD-2.5G graph fixes its input at 1 x 3 x 640 x 640 because its two FPN ``Resize`` nodes carry
target ``sizes`` and its output ``Reshape`` nodes carry a batch of 1. :func:`shape_free_graph` rewrites those
nodes (``Resize`` by ``scales``, ``Reshape`` keeping the input's batch), makes the input dimensions symbolic,
checks the result against the original on the original's own input (boxes, scores and landmarks within
``1e-4``) and caches it by the source file's sha256, so the rewrite runs once per model file. A graph that
cannot be rewritten (or disagrees) gives ``None`` and a warning naming the file; callers keep the fixed shape.

    >>> path = shape_free_graph("scrfd.onnx", cache_dir)             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Largest difference allowed between the original and the rewritten graph on the original's input.
TOLERANCE = 1e-4


class RewriteError(ValueError):
    """A graph whose fixed shapes this module does not know how to free."""


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fixed_input_shape(model) -> tuple[int, ...] | None:
    """The single input's shape when every dimension is a number, else None (already free)."""
    if len(model.graph.input) != 1:
        raise RewriteError(f"expected one graph input, found {len(model.graph.input)}")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if all(d.HasField("dim_value") for d in dims):
        return tuple(int(d.dim_value) for d in dims)
    return None


def rewrite(model):
    """A copy of ``model`` (an ``onnx.ModelProto``) with batch, height and width free."""
    import onnx
    from onnx import numpy_helper, shape_inference

    shape = fixed_input_shape(model)
    if shape is None:
        return model
    if len(shape) != 4:
        raise RewriteError(f"expected an N x C x H x W input, found shape {shape}")
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    for k, node in enumerate(graph.node):
        if node.op_type == "Resize":
            if len(node.input) < 4 or not node.input[3]:
                continue  # already by scales
            if node.input[3] not in inits or node.input[0] not in shapes:
                raise RewriteError(
                    f"Resize node {node.name or k}: its sizes are not a constant of known input"
                )
            sizes = numpy_helper.to_array(inits[node.input[3]]).astype(np.float64)
            src = np.asarray(shapes[node.input[0]], np.float64)
            if src.shape != sizes.shape or (src <= 0).any():
                raise RewriteError(f"Resize node {node.name or k}: input shape {tuple(src)} vs sizes {sizes}")
            scales = sizes / src
            name = f"{node.output[0]}__scales"
            graph.initializer.append(numpy_helper.from_array(scales.astype(np.float32), name))
            if not node.input[1]:
                roi = f"{node.output[0]}__roi"
                graph.initializer.append(numpy_helper.from_array(np.zeros(0, np.float32), roi))
                node.input[1] = roi
            node.input[2] = name
            del node.input[3]
        elif node.op_type == "Reshape":
            target = inits.get(node.input[1])
            if target is None:
                raise RewriteError(f"Reshape node {node.name or k}: its shape is computed, not a constant")
            dims = numpy_helper.to_array(target).astype(np.int64)
            if len(dims) and dims[0] == shape[0] and shape[0] == 1:
                # keep the input's batch: 0 copies the input's first dimension (allowzero is 0 by default)
                new = dims.copy()
                new[0] = 0
                name = f"{node.input[1]}__free_batch"
                if name not in inits:
                    inits[name] = numpy_helper.from_array(new, name)
                    graph.initializer.append(inits[name])
                node.input[1] = name
        elif node.op_type in ("Flatten", "Expand", "Tile", "ConstantOfShape"):
            raise RewriteError(f"node {node.name or k} ({node.op_type}) may carry a fixed shape")
    symbolic = ["batch", None, "height", "width"]
    for d, sym in zip(graph.input[0].type.tensor_type.shape.dim, symbolic, strict=True):
        if sym is not None:
            d.Clear()
            d.dim_param = sym
    for o in graph.output:  # every output dimension but the last (values per anchor) depends on the input
        dims = o.type.tensor_type.shape.dim
        for i, d in enumerate(dims[:-1]):
            d.Clear()
            d.dim_param = f"{o.name}_{i}"
    del graph.value_info[:]
    # drop initializers no node reads any more (the old sizes)
    used = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(out)
    return out


def _run(model_bytes: bytes, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = 3
    sess = onnxruntime.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def check_equal(original: bytes, rewritten: bytes, shape: tuple[int, ...]) -> float:
    """Largest absolute output difference of the two graphs on one random input of ``shape``."""
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    a, b = _run(original, x), _run(rewritten, x)
    if len(a) != len(b) or any(u.shape != v.shape for u, v in zip(a, b, strict=True)):
        raise RewriteError(f"output shapes differ: {[u.shape for u in a]} vs {[v.shape for v in b]}")
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b, strict=True))


def shape_free_graph(source: str | os.PathLike, cache_dir: str | os.PathLike) -> Path | None:
    """The shape-free version of the ONNX file ``source``, cached as ``<cache_dir>/<sha256>.onnx``: the
    source itself when its input is already free, None (with a warning naming the file) when it cannot be
    rewritten or the rewrite disagrees with it at the original shape."""
    import onnx

    source = Path(source)
    digest = sha256_of(source)
    cached = Path(cache_dir) / f"{digest}.onnx"
    if cached.is_file():
        return cached
    try:
        model = onnx.load(str(source))
        shape = fixed_input_shape(model)
        if shape is None:
            return source
        freed = rewrite(model)
        data = freed.SerializeToString()
        diff = check_equal(model.SerializeToString(), data, shape)
        if not diff <= TOLERANCE:
            raise RewriteError(f"the rewritten graph differs from the original by {diff:.2g} at {shape}")
        other = (2, shape[1], max(32, shape[2] // 64 * 32), shape[3])  # a fixed shape left inside fails here
        _run(data, np.zeros(other, np.float32))
    except Exception as exc:  # any failure keeps the fixed shape; the reason goes into the warning
        log.warning(
            "%s: cannot free its fixed input shape (%s: %s); detecting at the fixed shape, one frame at a time",
            source,
            type(exc).__name__,
            exc,
        )
        return None
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=f".{digest[:12]}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, cached)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return cached
