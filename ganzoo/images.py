"""Image grids and files. A small grid writer of our own keeps torchvision (~3 s to import) off the
training path; PNGs are written through Pillow, which torchvision already requires."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from .atomic import atomic_write_bytes
from .data import to_uint8
from .interfaces import Generator


def make_grid(images: torch.Tensor, *, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> torch.Tensor:
    """Tile uint8 images ``[N, C, H, W]`` into one uint8 image ``[C, H', W']``, ``nrow`` per row."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError("make_grid expects uint8 images [N, C, H, W]")
    n, c, h, w = images.shape
    ncol = nrow or max(1, math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncol)
    grid = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top: top + h, left: left + w] = images[i]
    return grid


def png_bytes(image: torch.Tensor) -> bytes:
    """Encode a uint8 image ``[C, H, W]`` (C = 1 or 3) as PNG."""
    from PIL import Image

    array = image.permute(1, 2, 0).contiguous().numpy()
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def save_grid(images: torch.Tensor, path: str | Path, *, nrow: int | None = None, scale: int | None = None) -> Path:
    """Save float images in [-1, 1] (or uint8) ``[N, C, H, W]`` as one PNG grid, atomically.

    ``scale`` repeats every pixel; by default small images (32 px or less) are doubled for viewing.
    """
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    if scale is None:
        scale = 2 if images.shape[-1] <= 32 else 1
    grid = make_grid(images.cpu(), nrow=nrow)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    path = Path(path)
    atomic_write_bytes(path, png_bytes(grid))
    return path


def save_npy(images: torch.Tensor, path: str | Path) -> Path:
    """Save images as a uint8 ``.npy`` array of shape ``[N, C, H, W]`` with values 0..255."""
    import numpy as np

    if images.dtype != torch.uint8:
        images = to_uint8(images)
    buffer = io.BytesIO()
    np.save(buffer, images.cpu().numpy(), allow_pickle=False)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def save_pngs(images: torch.Tensor, folder: str | Path) -> list[Path]:
    """One PNG per image: ``folder/000000.png``, ``000001.png``, ..."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    folder = Path(folder)
    paths = []
    for i, image in enumerate(images.cpu()):
        path = folder / f"{i:06d}.png"
        path.write_bytes(png_bytes(image))
        paths.append(path)
    return paths


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between noise vectors (rows), which keeps them on the Gaussian shell."""
    cos = (a * b).sum(1, keepdim=True) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def save_interpolation(generator: Generator, path: str | Path, *, seed: int = 0, pairs: int = 16,
                       frames: int = 24, labels: torch.Tensor | None = None, ms_per_frame: int = 80) -> Path:
    """An animated GIF: a 4x4 grid, each cell walking from one latent to another and back.

    Latents come from the generator's own ``sample_latent``; a standard normal one is walked on
    the sphere (slerp), any other (codes, uniform noise) in a straight line.
    """
    from PIL import Image

    from .interfaces import Generator as Base

    rng = torch.Generator().manual_seed(seed)
    start = generator.sample_latent(pairs, generator=rng, device="cpu")
    end = generator.sample_latent(pairs, generator=rng, device="cpu")
    gaussian = type(generator).sample_latent is Base.sample_latent
    y = labels[:pairs] if labels is not None else None
    steps = [i / (frames - 1) for i in range(frames)]
    pictures = []
    for t in steps + steps[-2:0:-1]:
        z = slerp(start, end, t) if gaussian else torch.lerp(start, end, t)
        grid = make_grid(to_uint8(generator.sample(z=z, y=y)), nrow=4)
        grid = grid.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
        array = grid.permute(1, 2, 0).numpy()
        pictures.append(Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array))
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=ms_per_frame, loop=0)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path
