"""Render a workbook to PDF with the real LibreOffice and measure its text with poppler's
`pdftotext -bbox` (word boxes in points): what an auditor holds in hand when the pack is
printed."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
PDFTOTEXT = shutil.which("pdftotext")
_NS = "{http://www.w3.org/1999/xhtml}"


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def overlaps(self, other: Word) -> bool:
        """Ink on ink: the boxes share more than a point across and more than a quarter of the
        lower one's height. (A word box spans the font's ascent and descent, so consecutive
        lines of wrapped text touch by about a tenth of their height: that is not overprint.)"""
        across = min(self.x1, other.x1) - max(self.x0, other.x0)
        down = min(self.y1, other.y1) - max(self.y0, other.y0)
        return across > 1.0 and down > 0.25 * min(self.height, other.height)


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    width: float
    height: float
    words: tuple[Word, ...]

    @property
    def median_height(self) -> float:
        return statistics.median(w.height for w in self.words) if self.words else 0.0

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def overlapping(self) -> list[tuple[Word, Word]]:
        """Pairs of word boxes printed on top of each other (sweep by left edge)."""
        words = sorted(self.words, key=lambda w: w.x0)
        found = []
        for i, word in enumerate(words):
            for other in words[i + 1 :]:
                if other.x0 >= word.x1:
                    break
                if word.overlaps(other):
                    found.append((word, other))
        return found


def convert(workbook: Path, out: Path) -> Path:
    """The workbook as PDF (LibreOffice headless, its own profile so runs do not collide)."""
    assert SOFFICE is not None
    profile = out / "profile"
    done = subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(workbook),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    pdf = out / (workbook.stem + ".pdf")
    assert done.returncode == 0 and pdf.exists(), done.stdout + done.stderr
    return pdf


def pages(pdf: Path) -> list[Page]:
    """Every page with its word boxes (points, origin top left)."""
    assert PDFTOTEXT is not None
    html = pdf.with_suffix(".bbox.html")
    subprocess.run([PDFTOTEXT, "-bbox", str(pdf), str(html)], check=True, timeout=120)
    root = ET.parse(html).getroot()  # noqa: S314 (our own pdftotext's output, not untrusted)
    out = []
    for number, page in enumerate(root.iter(f"{_NS}page"), start=1):
        words = tuple(
            Word(
                (w.text or "").strip(),
                float(w.get("xMin", 0)),
                float(w.get("yMin", 0)),
                float(w.get("xMax", 0)),
                float(w.get("yMax", 0)),
            )
            for w in page.iter(f"{_NS}word")
            if (w.text or "").strip()
        )
        out.append(Page(number, float(page.get("width", 0)), float(page.get("height", 0)), words))
    return out
