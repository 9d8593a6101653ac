"""Text in images: RapidOCR (PP-OCRv4 detection + recognition on onnxruntime, models inside the
`rapidocr-onnxruntime` wheel; ../shared/MODELS.md). Blocking; callers use a thread."""

from __future__ import annotations

import threading

import numpy as np

# Boxes whose vertical centres are closer than this fraction of the line height are one line: a
# receipt's "Sourdough ..... 6.50" comes back as two boxes that belong on one row.
SAME_LINE = 0.5


class OCR:
    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR
        self.engine = RapidOCR()
        self._lock = threading.Lock()

    def read(self, rgb: np.ndarray) -> list[str]:
        """Lines of text, top to bottom, the boxes of a line left to right."""
        with self._lock:
            result, _ = self.engine(rgb)
        boxes = []
        for box, text, _score in result or []:
            ys = [p[1] for p in box]
            boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(p[0] for p in box), text))
        boxes.sort()
        lines: list[list[tuple]] = []
        for b in boxes:
            if lines and abs(b[0] - lines[-1][0][0]) < SAME_LINE * max(b[1], lines[-1][0][1]):
                lines[-1].append(b)
            else:
                lines.append([b])
        return [" ".join(t for *_, t in sorted(line, key=lambda b: b[2])) for line in lines]
