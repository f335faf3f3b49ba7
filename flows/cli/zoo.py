"""``ferv zoo``: the benchmark's baseline models (paper, section 4.2, Table 2) from the command line.

    ferv zoo list                         # name, paper name, family, our parameters, the README's
    ferv zoo list --n-frames 16 --pattern 'ts-*'
    ferv zoo export-refiner work/benchmark/r50.pt --out work/models/fer_r50.onnx

Registered in flows/cli/app.py; torch loads only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

zoo_app = typer.Typer(help="The benchmark's baseline models (paper, Table 2).", no_args_is_help=True)


@zoo_app.command("list")
def zoo_list(
    n_frames: Annotated[int, typer.Option(help="Frames per clip (the 2D models' heads grow with it).")] = 8,
    num_classes: Annotated[int, typer.Option(help="Output classes.")] = 7,
    pattern: Annotated[str | None, typer.Option(help="Only names matching this, e.g. 'ts-*'.")] = None,
) -> None:
    """Each baseline of Table 2: registry name, paper name, family, our parameter count, the README's."""
    import fnmatch

    from models.zoo import TABLE2, param_count

    typer.echo(f"{'name':<15} {'paper name':<22} {'family':<11} {'params (M)':>10} {'README (M)':>10}")
    for row in TABLE2:
        if pattern and not fnmatch.fnmatchcase(row.name, pattern):
            continue
        ours = param_count(row.name, num_classes, n_frames) / 1e6
        readme = "-" if row.readme_params is None else f"{row.readme_params:.0f}"
        typer.echo(f"{row.name:<15} {row.paper_name:<22} {row.family:<11} {ours:>10.2f} {readme:>10}")


@zoo_app.command("export-refiner")
def zoo_export_refiner(
    checkpoint: Annotated[Path, typer.Argument(help="A trained model's state dict (torch checkpoint).")],
    out: Annotated[Path, typer.Option(help="The ONNX file to write (a .json sidecar goes next to it).")],
    model: Annotated[str, typer.Option(help="The zoo model the checkpoint is of.")] = "r50",
    n_frames: Annotated[int, typer.Option(help="Frames per clip the model was trained with.")] = 8,
    mean: Annotated[
        tuple[float, float, float], typer.Option(help="Per-channel mean of the training normalisation.")
    ] = (0.485, 0.456, 0.406),
    std: Annotated[
        tuple[float, float, float], typer.Option(help="Per-channel std of the training normalisation.")
    ] = (0.229, 0.224, 0.225),
) -> None:
    """Export a trained clip model as the FER refiner of the next build-candidates run (issue 7)."""
    from models.zoo import build, export_refiner, refine_overrides
    from models.zoo.base import load_init_checkpoint

    net = build(model, n_frames=n_frames)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no such checkpoint")
    fresh = load_init_checkpoint(net, checkpoint)
    if fresh:
        raise ValueError(f"{checkpoint}: has no trained classifier for {model} ({', '.join(fresh)} missing)")
    path = export_refiner(net, out, n_frames, mean=mean, std=std)
    typer.echo(f"wrote {path} and {path.with_suffix('.json')}; use it with:")
    flags = " ".join(f"--set '{o}'" for o in refine_overrides(path)[:3])
    typer.echo(f"ferv {flags} build-candidates --scene <scene>")
