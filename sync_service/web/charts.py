"""The dashboard's charts: one measure per chart, as horizontal bars against a target, in SVG that scales to the page.

Each chart answers one question ("is each region's plan within its allocation?"): one measure on
its one axis (money in one currency, or a ratio; never two measures of different sizes side by
side), the target drawn as a marker on each bar where one exists, and a bar on the wrong side of
its target flagged twice, in colour and in words. The axis has round ticks (1M, 2.5M, 500K: the
"nice numbers" of Heckbert's Graphics Gems algorithm), labelled by the caller's formatter (the
locale's compact form). The legend and title are HTML, so they wrap on a phone; the SVG has a
viewBox and the page's width. No script, no external file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from markupsafe import Markup, escape

WIDTH = 400  # the viewBox's width: the chart is drawn at the page's width, this only sets its proportions
FONT = 13
ROW = 30  # a bar's row; a row whose bar is flagged has a line of words under it
FLAG_LINE = 15
BAR = 14
OVER = "#b3261e"  # the colour of a bar on the wrong side of its target (with words, never colour alone)
TARGET = "#1d2430"
GRID = "#dde3ea"
NICE = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


@dataclass(frozen=True)
class Row:
    """One bar: its category, its value in the chart's unit (one part per series: stacked), and its target."""

    key: str
    parts: tuple[Decimal | None, ...]
    target: Decimal | None = None

    @property
    def value(self) -> Decimal | None:
        known = [p for p in self.parts if p is not None]
        return sum(known, Decimal(0)) if known else None


def cents(value: int | None) -> Decimal | None:
    """Integer cents as currency units, exactly."""
    return None if value is None else Decimal(int(value)) / 100


def nice_ticks(low: Decimal, high: Decimal, most: int = 6) -> list[Decimal]:
    """Round ticks covering [low, high] and zero: the finest step of 1, 2, 2.5 or 5 x a power of ten, in `most` steps.

    0, 2M, 4M … 12M for 10.4M; 0, 500K … 3M for 2.6M; 0, 5 … 25 for 24.6.
    """
    low, high = min(Decimal(low), Decimal(0)), max(Decimal(high), Decimal(0))
    if high == low:
        high = low + 1
    power = Decimal(10) ** ((high - low) / most).adjusted()  # the power of ten of the finest step's leading digit
    while True:  # a range straddling zero may need the next power's steps
        for step in (m * power for m in NICE):
            first = (low / step).to_integral_value(ROUND_FLOOR)
            last = (high / step).to_integral_value(ROUND_CEILING)
            if last - first <= most:
                return [(first + i) * step for i in range(int(last - first) + 1)]
        power *= 10


def _text_width(text: str, size: float = FONT) -> float:
    """About how wide a line of text is, in the viewBox's units (no font metrics on the server)."""
    return len(text) * size * 0.6


def _plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros, for data-* attributes tests and scripts read."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _end_text(row: Row, label: Callable[[Decimal], str]) -> str:
    """The words at a bar's end: its value, and its target's ("10.4M of 5.2M"), or "no data"."""
    if row.value is None:
        return "no data"
    return label(row.value) if row.target is None else f"{label(row.value)} of {label(row.target)}"


def bar_chart(
    *,
    chart_id: str,
    title: str,
    axis: str,
    series: Sequence[tuple[str, str]],
    rows: Sequence[Row],
    label: Callable[[Decimal], str],
    target: str | None = None,
    flag: str = "Over target",
    worse: Literal["above", "below"] = "above",
    key_name: str = "key",
    note: str | None = None,
) -> Markup:
    """Horizontal bars of one measure by category, each against its target, as an HTML figure holding an SVG.

    `series` are (name, colour) of the stacked parts of each bar; `label` writes a value in the
    chart's unit (ticks, bar ends and the flag's difference); `target` names the marker (None: no
    targets); a bar `worse` than its target is drawn in red with `flag` and the difference in words.
    """
    values = [v for r in rows for v in (r.value, r.target) if v is not None]
    ticks = nice_ticks(min(values, default=Decimal(0)), max(values, default=Decimal(0)))
    low, high = ticks[0], ticks[-1]

    def off(row: Row) -> Decimal | None:
        """How far the row is on the wrong side of its target (positive), else None."""
        if row.value is None or row.target is None:
            return None
        gap = row.value - row.target if worse == "above" else row.target - row.value
        return gap if gap > 0 else None

    flagged = {r.key: off(r) for r in rows}
    ends = [_end_text(r, label) for r in rows]
    left = min(max((_text_width(r.key) for r in rows), default=0) + 10, 150)
    right = min(max((_text_width(e) for e in ends), default=0), 150) + 8
    x0, x1 = max(left, 40.0), WIDTH - max(right, _text_width(label(high)) / 2 + 4)
    heights = [ROW + (FLAG_LINE if flagged[r.key] is not None else 0) for r in rows]
    top, plot = 6, sum(heights)
    height = top + plot + 38

    def x(value: Decimal) -> float:
        return x0 + float((value - low) / (high - low)) * (x1 - x0)

    caption = f"{chart_id}-title"
    parts = [
        f'<figure class="chart" id="{escape(chart_id)}" data-axis="{escape(axis)}">',
        f'<figcaption id="{caption}">{escape(title)}</figcaption>',
        '<ul class="legend">',
        *(
            f'<li data-series="{escape(name)}"><span class="swatch" style="background:{colour}"></span>'
            f"{escape(name)}</li>"
            for name, colour in series
        ),
    ]
    if target is not None and any(r.target is not None for r in rows):
        parts.append(f'<li data-series="target"><span class="swatch target"></span>{escape(target)}</li>')
        parts.append(
            f'<li data-series="flag"><span class="swatch" style="background:{OVER}"></span>'
            f"{escape(flag)} (marked {'▲' if worse == 'above' else '▼'})</li>"
        )
    parts.append("</ul>")
    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" aria-labelledby="{caption}" font-size="{FONT}">'
    )
    bottom = top + plot
    for tick in ticks:
        tx = x(tick)
        parts.append(
            f'<g class="tick" data-value="{_plain(tick)}">'
            f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{bottom}" stroke="{TARGET if tick == 0 else GRID}"/>'
            f'<text x="{tx:.1f}" y="{bottom + 15}" text-anchor="middle">{escape(label(tick))}</text></g>'
        )
    parts.append(
        f'<text class="axis" x="{(x0 + x1) / 2:.1f}" y="{bottom + 32}" text-anchor="middle" '
        f'fill="#5a6676">{escape(axis)}</text>'
    )
    y = top
    for row, row_height, end in zip(rows, heights, ends, strict=True):
        gap = flagged[row.key]
        attrs = f'data-key="{escape(row.key)}" data-{key_name}="{escape(row.key)}"'
        value = "" if row.value is None else _plain(row.value)
        aim = "" if row.target is None else _plain(row.target)
        parts.append(
            f'<g class="row" {attrs} data-value="{value}" data-target="{aim}"{" data-over" if gap is not None else ""}>'
        )
        middle = y + 4 + BAR / 2
        parts.append(f'<text x="{x0 - 6:.1f}" y="{middle + 4:.1f}" text-anchor="end">{escape(row.key)}</text>')
        start = Decimal(0)
        for (name, colour), part in zip(series, row.parts, strict=True):
            size = part or Decimal(0)
            a, b = sorted((x(start), x(start + size)))
            # one series: the flagged bar turns red; stacked parts keep their colours and the bar gets a red edge
            fill = OVER if gap is not None and len(series) == 1 else colour
            edge = f' stroke="{OVER}" stroke-width="2"' if gap is not None and len(series) > 1 else ""
            shown = "" if part is None else _plain(part)
            parts.append(
                f'<rect class="bar" data-series="{escape(name)}" {attrs} data-value="{shown}" x="{a:.1f}" '
                f'y="{y + 4}" width="{b - a:.1f}" height="{BAR}" fill="{fill}"{edge}>'
                f"<title>{escape(row.key)}, {escape(name)}: {escape(label(size))}</title></rect>"
            )
            start += size
        reach = x(row.value) if row.value is not None else x0
        if row.target is not None:
            tx = x(row.target)
            reach = max(reach, tx)
            parts.append(
                f'<line class="target" x1="{tx:.1f}" y1="{y}" x2="{tx:.1f}" y2="{y + 8 + BAR}" '
                f'stroke="{TARGET}" stroke-width="3"><title>{escape(row.key)}, {escape(target or "target")}: '
                f"{escape(label(row.target))}</title></line>"
            )
        strong = f' fill="{OVER}" font-weight="600"' if gap is not None else ""
        parts.append(f'<text class="value" x="{reach + 5:.1f}" y="{middle + 4:.1f}"{strong}>{escape(end)}</text>')
        if gap is not None:
            mark = "▲" if worse == "above" else "▼"
            parts.append(
                f'<text class="flag" x="{x0:.1f}" y="{y + 8 + BAR + 10:.1f}" fill="{OVER}" font-weight="600">'
                f"{mark} {escape(flag)} by {escape(label(gap))}</text>"
            )
        parts.append("</g>")
        y += row_height
    parts.append("</svg>")
    if note:
        parts.append(f'<p class="note">{escape(note)}</p>')
    parts.append("</figure>")
    return Markup("".join(parts))
