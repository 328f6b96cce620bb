"""BlurHash (https://blurha.sh) of an image: the placeholder Mastodon clients paint while
the picture loads. A direct implementation of the published algorithm on a 32 px copy
(pure Python, a few milliseconds; run with the rest of the image work in a thread)."""

from __future__ import annotations

import math
from typing import Final

from PIL import Image

CHARS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
SAMPLE: Final = 32


def _base83(value: int, length: int) -> str:
    return "".join(CHARS[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _to_linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _to_srgb(value: float) -> int:
    v = min(1.0, max(0.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exp: float) -> float:
    return math.copysign(abs(value) ** exp, value)


def blurhash(img: Image.Image, x_components: int = 4, y_components: int = 3) -> str:
    small = img.convert("RGB")
    small.thumbnail((SAMPLE, SAMPLE))
    w, h = small.size
    px = [tuple(_to_linear(c) for c in small.getpixel((x, y))) for y in range(h) for x in range(w)]  # type: ignore[union-attr]
    cos_x = [[math.cos(math.pi * i * x / w) for x in range(w)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / h) for y in range(h)] for j in range(y_components)]
    factors: list[tuple[float, float, float]] = []
    for j in range(y_components):
        for i in range(x_components):
            norm = (1 if i == 0 and j == 0 else 2) / (w * h)
            r = g = b = 0.0
            for y in range(h):
                cy = cos_y[j][y]
                for x in range(w):
                    basis = cos_x[i][x] * cy
                    pr, pg, pb = px[y * w + x]
                    r, g, b = r + basis * pr, g + basis * pg, b + basis * pb
            factors.append((r * norm, g * norm, b * norm))
    dc, ac = factors[0], factors[1:]
    out = _base83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        quantised = max(0, min(82, int(max(abs(v) for f in ac for v in f) * 166 - 0.5)))
        max_value = (quantised + 1) / 166
    else:
        quantised, max_value = 0, 1.0
    out += _base83(quantised, 1)
    out += _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, int(_sign_pow(v / max_value, 0.5) * 9 + 9.5))) for v in f]
        out += _base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out
