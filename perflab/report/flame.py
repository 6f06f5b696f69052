"""A CPU profile as an icicle graph (a flame graph drawn top-down): inline SVG, no script, a
few kilobytes. Each box is a function on the stack; its width is the share of samples with it
there; boxes below it are what it called. Hover a box for its name and share."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from typing import Any

from perflab.errors import ConfigurationError

__all__ = ["SvgFigure", "flame_graph"]

_E = html.escape


class SvgFigure:
    """SVG markup that a notebook shows inline (and nbconvert keeps as markup)."""

    def __init__(self, svg: str) -> None:
        self.svg = svg

    def _repr_html_(self) -> str:
        return self.svg

    def __str__(self) -> str:
        return self.svg


def _tree(stacks: Mapping[tuple[str, ...], int]) -> dict[str, Any]:
    root: dict[str, Any] = {"name": "all", "n": 0, "kids": {}}
    for stack, count in stacks.items():
        root["n"] += count
        node = root
        for frame in stack:
            node = node["kids"].setdefault(frame, {"name": frame, "n": 0, "kids": {}})
            node["n"] += count
    return root


def _colour(name: str) -> str:
    where = name.rpartition(" (")[2] or name
    h = int(hashlib.md5(where.encode(), usedforsecurity=False).hexdigest()[:4], 16)
    return f"hsl({20 + h % 35},{70 + h % 20}%,{62 + h % 12}%)"


def flame_graph(
    profile: Any, *, title: str = "CPU profile", width: int = 1100, max_depth: int = 24
) -> SvgFigure:
    """An icicle graph of ``profile`` (a ``bench.CpuProfile``, or a mapping of stacks to
    sample counts). Boxes narrower than a pixel are left out; the root is every sample."""
    stacks = getattr(profile, "stacks", profile)
    if not isinstance(stacks, Mapping) or not stacks:
        raise ConfigurationError(
            "flame_graph needs a profile with samples (bench.cpu_profile over longer work, "
            "or a higher rate)",
            name="profile",
        )
    root = _tree(stacks)
    total = root["n"]
    row, top = 18, 26
    boxes: list[str] = []
    depth_seen = 0

    def draw(node: dict[str, Any], x: float, depth: int) -> None:
        nonlocal depth_seen
        w = node["n"] / total * width
        if w < 1 or depth > max_depth:
            return
        depth_seen = max(depth_seen, depth)
        y = top + depth * row
        share = 100 * node["n"] / total
        label = node["name"] if depth else f"all ({total:,} samples)"
        tip = f"{label}: {share:.1f} % of samples"
        chars = int((w - 6) / 6.6)
        text = label if len(label) <= chars else (label[: chars - 1] + "…" if chars > 3 else "")
        boxes.append(
            f'<g><title>{_E(tip)}</title><rect x="{x:.1f}" y="{y}" width="{max(w - 0.5, 0.5):.1f}" '
            f'height="{row - 1}" fill="{"#ddd" if not depth else _colour(node["name"])}" rx="2"/>'
            + (f'<text x="{x + 3:.1f}" y="{y + 13}">{_E(text)}</text>' if text else "")
            + "</g>"
        )
        kx = x
        for kid in sorted(node["kids"].values(), key=lambda k: -k["n"]):
            draw(kid, kx, depth + 1)
            kx += kid["n"] / total * width

    draw(root, 0.0, 0)
    height = top + (depth_seen + 1) * row + 4
    samples = getattr(profile, "samples", total)
    rate = getattr(profile, "rate", None)
    sub = f"{samples:,} samples" + (f" at {rate} Hz" if rate else "")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="system-ui,sans-serif" '
        f'font-size="11"><title>{_E(title)}</title>'
        f'<text x="0" y="16" font-size="13" font-weight="600">{_E(title)}</text>'
        f'<text x="{width}" y="16" text-anchor="end" fill="#666">{_E(sub)}; width = share of '
        "samples, below = what it called</text>"
        f"{''.join(boxes)}</svg>"
    )
    return SvgFigure(svg)
