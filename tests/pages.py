"""Pages as a reader sees them: opened in real headless Chromium, console messages collected,
and a screenshot that must not be blank."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from .conftest import CHROMIUM_FLAGS, chromium

_CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")


def open_page(html: Path, png: Path, *, size: str = "1200,1600") -> list[str]:
    """Render ``html`` in headless Chromium, save a screenshot at ``png`` and return every
    console message the page produced (errors, failed loads, logs)."""
    profile = png.parent / f"chromium-profile-{png.stem}"
    done = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return _CONSOLE.findall(done.stderr)


def assert_not_blank(png: Path) -> None:
    pixels = imread(png)[..., :3]
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    non_white = np.mean(pixels.min(axis=2) < 0.9)
    assert non_white > 0.02, f"screenshot {png} is blank ({non_white:.2%} non-white)"
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 20  # text and a figure


def assert_page_renders(html: Path, png: Path, *, size: str = "1200,1600") -> None:
    """No console message at all, and a screenshot with something on it."""
    messages = open_page(html, png, size=size)
    assert messages == [], f"{html.name}: console says {messages}"
    assert_not_blank(png)
