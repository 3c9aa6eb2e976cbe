"""``report.html`` of an analysis: one file, no scripts, no links out, opens offline.

The score timeline is inline SVG (score over threshold, the threshold at 1, spotted intervals as
bands, frames without a face shaded); each interval has its apex face (an inline JPEG) and, with
a bundle, its class probabilities as bars.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from merkit.io.atomic import atomic_write_text
from merkit.spotting import KIND_HEX, KIND_RGB

WIDTH, HEIGHT, MARGIN = 1000, 200, 40
SCORE_COLOUR, THRESHOLD_COLOUR = "#1f6fd0", "#d62728"
KIND_FILL = {kind: "rgba({},{},{},0.35)".format(*rgb) for kind, rgb in KIND_RGB.items()}


def timeline_svg(relative: np.ndarray, found: np.ndarray, rows: list[dict], fps: float) -> str:
    """Inline SVG of the score (over its threshold) against time, with the intervals."""
    n = len(relative)
    top = max(2.0, float(np.nanmax(relative)) * 1.05 if n else 2.0)
    x = lambda t: MARGIN + (WIDTH - 2 * MARGIN) * t / max(n - 1, 1)  # noqa: E731
    y = lambda v: HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * min(v, top) / top  # noqa: E731
    bins = min(n, 2000)
    edges = np.linspace(0, n, bins + 1).astype(int)
    peaks = [float(relative[a:b].max()) if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:])]  # keep every peak
    points = " ".join(f"{x((a + b - 1) / 2):.1f},{y(v):.1f}" for a, b, v in zip(edges[:-1], edges[1:], peaks))
    parts = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="spotting score over time">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    missing = np.flatnonzero(np.diff(np.r_[0, (~found).astype(int), 0]))
    for a, b in zip(missing[::2], missing[1::2]):
        parts.append(
            f'<rect x="{x(a):.1f}" y="{MARGIN}" width="{max(x(b) - x(a), 1):.1f}" height="{HEIGHT - 2 * MARGIN}" fill="#cccccc">'
            f"<title>no face</title></rect>"
        )
    for row in rows:
        a, b = row["onset_frame"], row["offset_frame"]
        label = row["kind"] + (f": {row['prediction']}" if row.get("prediction") else "")
        parts.append(
            f'<rect class="interval {row["kind"]}" x="{x(a):.1f}" y="{MARGIN}" width="{max(x(b) - x(a), 3):.1f}" '
            f'height="{HEIGHT - 2 * MARGIN}" fill="{KIND_FILL[row["kind"]]}"><title>{html.escape(label)}, '
            f"{row['onset_s']:.2f}-{row['offset_s']:.2f} s</title></rect>"
        )
    parts.append(
        f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="{THRESHOLD_COLOUR}" '
        f'stroke-width="1.5" stroke-dasharray="6 4"/>'
    )
    parts.append(f'<polyline points="{points}" fill="none" stroke="{SCORE_COLOUR}" stroke-width="2.5"/>')
    parts.append(
        f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{HEIGHT - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>'
    )
    seconds = n / fps
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1e9) if seconds / s <= 10)
    for s in np.arange(0, seconds + 1e-9, step):
        parts.append(
            f'<text x="{x(s * fps):.1f}" y="{HEIGHT - MARGIN + 16}" font-size="11" text-anchor="middle">{s:g} s</text>'
        )
    parts.append(f'<text x="{MARGIN}" y="{MARGIN - 8}" font-size="12">score / threshold (dashed line = 1)</text></svg>')
    return "\n".join(parts)


def _bars(row: dict, classes: tuple[str, ...]) -> str:
    cells = []
    for c in classes:
        p = row.get(f"p_{c}")
        if p is None:
            continue
        cells.append(
            f'<div class="bar"><span class="name">{html.escape(c)}</span><span class="track">'
            f'<span class="fill" style="width:{100 * p:.0f}%"></span></span><span>{p:.2f}</span></div>'
        )
    return "".join(cells)


def write_analysis_report(
    path: Path,
    *,
    source,
    relative: np.ndarray,
    found: np.ndarray,
    rows: list[dict],
    thumbnails: dict[int, str],
    classes: tuple[str, ...],
    spotter: str,
    note: str = "",
) -> None:
    n = len(relative)
    counts = {k: sum(r["kind"] == k for r in rows) for k in ("micro", "macro")}
    cards = []
    for i, row in enumerate(rows):
        title = f"{row['kind']} {row['onset_s']:.2f}-{row['offset_s']:.2f} s (apex {row['apex_s']:.2f} s, frame {row['apex_frame']})"
        prediction = f'<p class="prediction">{html.escape(row["prediction"])}</p>' if row.get("prediction") else ""
        note = f'<p class="note">{html.escape(row["note"])}</p>' if row.get("note") else ""
        image = f'<img src="{thumbnails[i]}" width="128" height="128" alt="apex face">' if i in thumbnails else ""
        cards.append(
            f'<div class="card {row["kind"]}">{image}<div><h3>{html.escape(title)}</h3>{prediction}{_bars(row, classes)}{note}</div></div>'
        )
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>merkit analysis: {html.escape(source.path.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
.card {{ display: flex; gap: 16px; border: 1px solid #ddd; border-left: 6px solid {KIND_HEX["micro"]}; padding: 8px; margin: 8px 0; max-width: 960px; }}
.card.macro {{ border-left-color: {KIND_HEX["macro"]}; }}
.card h3 {{ margin: 0 0 6px; font-size: 15px; }}
.prediction {{ font-weight: bold; margin: 0 0 6px; }}
.bar {{ display: flex; align-items: center; gap: 8px; font-size: 13px; }}
.bar .name {{ width: 110px; }}
.bar .track {{ width: 240px; height: 10px; background: #eee; display: inline-block; }}
.bar .fill {{ height: 10px; background: {SCORE_COLOUR}; display: block; }}
.note {{ color: #a33; font-size: 13px; }}
</style></head><body>
<h1>{html.escape(source.path.name)}</h1>
<p>{n} frames at {source.fps:g} fps ({n / source.fps:.1f} s); a face in {int(found.sum())} of them.
Spotter <code>{html.escape(spotter)}</code>: {counts["micro"]} micro- and {counts["macro"]} macro-expression interval(s).</p>
{f'<p class="note">{html.escape(note)}</p>' if note else ""}
<h2>Timeline</h2>
{timeline_svg(relative, found, rows, source.fps)}
<p>Orange bands: micro intervals; purple: macro; grey: no face.</p>
<h2>Intervals</h2>
{"".join(cards) or "<p>No interval was spotted.</p>"}
</body></html>
"""
    atomic_write_text(path, body)
