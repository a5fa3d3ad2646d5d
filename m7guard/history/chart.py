"""An inline SVG line chart of the pass rate per framework over the recorded audits.

Plain SVG (no script, no external asset): one `<g class="series">` per framework, a point
per audit with a `<title>` tooltip, a legend, audits evenly spaced left to right by time.
"""

from __future__ import annotations

from typing import Any

from markupsafe import escape

PALETTE = ("#0b3954", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#0969da", "#9a6700")
WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 64
PAD = 40  # room inside the plot for the first audit's slanted date label


def _x(i: int, n: int) -> float:
    span = WIDTH - LEFT - RIGHT - 2 * PAD
    return LEFT + PAD + (span / 2 if n == 1 else span * i / (n - 1))


def _y(rate: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - rate)


def svg(series: dict[str, dict[str, Any]], current_id: int | None = None) -> str:
    """The chart as SVG text (every value from the data escaped).

    series: framework -> {title, points: [(Audit, Rate)]} (analysis.framework_series).
    current_id: the audit this report shows, marked on the axis."""
    audits = sorted(
        {a.id: a for entry in series.values() for a, _ in entry["points"]}.values(),
        key=lambda a: (a.started, a.id),
    )
    index = {a.id: i for i, a in enumerate(audits)}
    n = len(audits)
    legend_y = HEIGHT + 8
    height = legend_y + 18 * len(series) + 4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="system-ui, sans-serif" font-size="11">',
        "<title>Pass rate per framework over the recorded audits</title>",
    ]
    for pct in (0, 25, 50, 75, 100):
        y = _y(pct / 100)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#57606a">{pct}%</text>'
        )
    for a in audits:
        x = _x(index[a.id], n)
        label = escape(a.started[:10])
        weight = ' font-weight="700"' if a.id == current_id else ""
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="end" fill="#57606a"'
            f'{weight} transform="rotate(-30 {x:.1f} {HEIGHT - BOTTOM + 16})">'
            f"{label}</text>"
        )
    for k, (fw, entry) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        title = escape(entry["title"])
        out.append(f'<g class="series" data-framework="{escape(fw)}">')
        segments: list[list[str]] = [[]]
        dots = []
        for audit, rate in entry["points"]:
            x = _x(index[audit.id], n)
            if rate.rate is None:
                segments.append([])
                continue
            y = _y(rate.rate)
            segments[-1].append(f"{x:.1f},{y:.1f}")
            tip = escape(
                f"{entry['title']}, {audit.started}: {100 * rate.rate:.1f}% "
                f"({rate.passed} of {rate.evaluated} passed)"
            )
            dots.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"><title>{tip}</title>'
                "</circle>"
            )
        for seg in segments:
            if len(seg) > 1:
                out.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                    f'points="{" ".join(seg)}"/>'
                )
        out += dots
        ly = legend_y + 18 * k
        out.append(
            f'<rect x="{LEFT}" y="{ly}" width="12" height="12" fill="{color}"/>'
            f'<text x="{LEFT + 18}" y="{ly + 10}" fill="#1f2328">{title}</text>'
        )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
