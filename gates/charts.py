"""The report's charts as deterministic PNG bytes (matplotlib, Agg, no pyplot state).

The same data give the same bytes: default rcParams, a bundled font (DejaVu Sans), a fixed size and
dpi, and no "Software" metadata. Two charts:

- `slice_chart`: a gate's metric per slice, candidate against baseline (horizontal bars, with the
  intervals as error bars when given);
- `kmpd_chart`: km per disengagement with its confidence interval, candidate against baseline, one
  row per gate; an interval with no upper end (no disengagement) is drawn to the plot's edge with an
  arrow.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
WIDTH_IN = 8.0
CANDIDATE_COLOUR = "#0969da"
BASELINE_COLOUR = "#8c959f"
_RC = {**{k: v for k, v in matplotlib.rcParamsDefault.items() if not k.startswith(("backend", "interactive"))},
       "font.family": "DejaVu Sans", "font.size": 9.0, "svg.hashsalt": "andon",
       "path.simplify": True, "axes.spines.top": False, "axes.spines.right": False}


def png_data_uri(png: bytes) -> str:
    """A `data:image/png;base64,...` URI for an <img> src."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def slice_chart(title: str, slices: Sequence[Mapping[str, Any]], candidate_label: str,
                baseline_label: str | None) -> bytes | None:
    """Per-slice values of one metric, candidate against baseline.

    Args:
        title: the chart's title (the gate and its metric).
        slices: [{"slice", "candidate", "baseline", "candidate_interval", "baseline_interval"}] in the
            order to draw them (top to bottom); None values are left out.
        candidate_label: legend text of the candidate's bars.
        baseline_label: legend text of the baseline's bars, or None for no baseline.

    Returns:
        PNG bytes, or None when no slice has a finite value.
    """
    rows = [s for s in slices if _finite(s.get("candidate")) or _finite(s.get("baseline"))]
    if not rows:
        return None
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, max(2.2, 0.42 * len(rows) + 1.3)), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        n = len(rows)
        positions = [n - 1 - i for i in range(n)]
        sides = [("candidate", candidate_label, CANDIDATE_COLOUR, 0.2)]
        if baseline_label is not None:
            sides.append(("baseline", baseline_label, BASELINE_COLOUR, -0.2))
        height = 0.38 if baseline_label is not None else 0.6
        for key, label, colour, offset in sides:
            ys, widths, bars = [], [], []  # bars: (y, value, below, above) of the rows with an interval
            for y, row in zip(positions, rows, strict=True):
                value = row.get(key)
                if not _finite(value):
                    continue
                y_bar = y + (offset if baseline_label is not None else 0.0)
                ys.append(y_bar)
                widths.append(float(value))
                below, above = _interval(row.get(f"{key}_interval"), float(value))
                if below or above:
                    bars.append((y_bar, float(value), below, above))
            if ys:
                ax.barh(ys, widths, height=height, color=colour, label=label)
            if bars:
                bar_ys, bar_values, below, above = zip(*bars, strict=True)
                ax.errorbar(bar_values, bar_ys, xerr=[below, above], fmt="none", ecolor="#24292f", capsize=3,
                            elinewidth=1)
        ax.set_yticks(positions, [_short(str(r.get("slice", "?"))) for r in rows])
        ax.set_title(title, loc="left")
        ax.grid(axis="x", color="#d0d7de", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        fig.tight_layout()
        return _png(fig)


def kmpd_chart(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Km per disengagement with confidence intervals, one row per (gate, side).

    Args:
        rows: [{"label": str, "side": "candidate" | "baseline", "value": float | None,
            "interval": [low, high | None] | None, "disengagements": int | None}] top to bottom. A None
            value (no disengagement) is drawn at the interval's low end with a ">=" mark.

    Returns:
        PNG bytes, or None when no row has a value or an interval.
    """
    drawn = [r for r in rows if _finite(r.get("value")) or _finite(_low(r.get("interval")))]
    if not drawn:
        return None
    ends = [float(v) for r in drawn for v in (r.get("value"), *(r.get("interval") or ())) if _finite(v)]
    right = max(ends) * 1.25 if max(ends) > 0 else 1.0
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, max(2.0, 0.45 * len(drawn) + 1.2)), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        n = len(drawn)
        for i, row in enumerate(drawn):
            y = n - 1 - i
            colour = CANDIDATE_COLOUR if row.get("side") == "candidate" else BASELINE_COLOUR
            interval = row.get("interval") or (None, None)
            low = float(interval[0]) if _finite(interval[0]) else None
            high = float(interval[1]) if len(interval) > 1 and _finite(interval[1]) else None
            if low is not None:
                ax.plot([low, high if high is not None else right], [y, y], color=colour, linewidth=2.5,
                        solid_capstyle="butt")
                if high is None:
                    ax.annotate("", xy=(right, y), xytext=(right * 0.97, y),
                                arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 2})
            value = row.get("value")
            if _finite(value):
                ax.plot([float(value)], [y], marker="o", color=colour, markersize=7)
                text = f"{float(value):.3g}"
            else:
                ax.plot([low], [y], marker=">", color=colour, markersize=7)
                text = f">= {low:.3g} (no disengagement)"
            ax.annotate(text, xy=(float(value) if _finite(value) else low, y), xytext=(0, 7),
                        textcoords="offset points", ha="center", fontsize=8, color="#24292f")
        ax.set_yticks(range(n - 1, -1, -1), [_short(str(r.get("label", "?"))) for r in drawn])
        ax.set_xlim(0, right)
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlabel("km per disengagement (point and confidence interval)")
        ax.set_title("km per disengagement, candidate vs baseline", loc="left")
        ax.grid(axis="x", color="#d0d7de", linewidth=0.6)
        ax.set_axisbelow(True)
        fig.tight_layout()
        return _png(fig)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _low(interval: Any) -> Any:
    return interval[0] if interval else None


def _interval(interval: Any, value: float) -> tuple[float, float]:
    """Error-bar lengths below and above the value (0 where an end is unknown or unbounded)."""
    if not interval or len(interval) != 2:
        return 0.0, 0.0
    low, high = interval
    return (max(0.0, value - float(low)) if _finite(low) else 0.0,
            max(0.0, float(high) - value) if _finite(high) else 0.0)


def _short(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
