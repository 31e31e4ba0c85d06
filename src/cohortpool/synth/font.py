"""A 5x7 bitmap font for burning a patient's name into a screenshot's pixels.

Hand-drawn here because the point is a crude, deterministic raster (as a PACS "screen save" has), without
a font file or a drawing library. Each glyph is 7 rows of 5 cells, ``#`` = ink.
"""

from __future__ import annotations

import numpy as np

GLYPH_W, GLYPH_H = 5, 7

_GLYPHS: dict[str, tuple[str, ...]] = {
    "A": (" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "B": ("#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "),
    "C": (" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "),
    "D": ("#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "),
    "E": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"),
    "F": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "),
    "G": (" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"),
    "H": ("#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "I": (" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "J": ("  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "),
    "K": ("#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"),
    "M": ("#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"),
    "N": ("#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "),
    "Q": (" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"),
    "R": ("#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"),
    "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "V": ("#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "),
    "W": ("#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "),
    "X": ("#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"),
    "Y": ("#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"),
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    " ": ("     ",) * 7,
    "-": ("     ", "     ", "     ", "#####", "     ", "     ", "     "),
    ":": ("     ", "  #  ", "  #  ", "     ", "  #  ", "  #  ", "     "),
    ".": ("     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "),
    ",": ("     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "),
    "/": ("    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    "),
}

#: characters the font can draw
CHARSET = frozenset(_GLYPHS)


def glyph(char: str) -> np.ndarray:
    """The 7x5 boolean mask of ``char`` (unknown characters draw as a filled block)."""
    rows = _GLYPHS.get(char.upper(), ("#####",) * GLYPH_H)
    return np.array([[c == "#" for c in row] for row in rows], dtype=bool)


def render(text: str, scale: int = 2, spacing: int = 1) -> np.ndarray:
    """A boolean raster of ``text`` on one line; each glyph cell is ``(5 + spacing) * scale`` wide."""
    cell_w = GLYPH_W + spacing
    out = np.zeros((GLYPH_H, cell_w * len(text)), dtype=bool)
    for i, char in enumerate(text):
        out[:, i * cell_w : i * cell_w + GLYPH_W] = glyph(char)
    return np.kron(out, np.ones((scale, scale), dtype=bool)).astype(bool)


def read_line(raster: np.ndarray, length: int, scale: int = 2, spacing: int = 1) -> str:
    """Recognise ``length`` characters drawn by :func:`render` (lets tests prove what was burned in)."""
    cell_w = GLYPH_W + spacing
    small = raster[::scale, ::scale]
    text = []
    for i in range(length):
        cell = small[:GLYPH_H, i * cell_w : i * cell_w + GLYPH_W]
        match = next((c for c in sorted(_GLYPHS) if np.array_equal(glyph(c), cell)), "?")
        text.append(match)
    return "".join(text)
