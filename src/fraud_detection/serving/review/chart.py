"""The geometry of an alert's explanation chart: one horizontal bar per top feature, to the
right when it pushed the score towards fraud, to the left when away. The template draws it as
inline SVG, so the page needs no chart library and nothing from the network."""

from dataclasses import dataclass

from .queries import Contribution

WIDTH = 640
ROW = 30
LABELS = 190  # the feature = value column
PAD = 70  # room for the contribution's figure beyond either end
ZERO = LABELS + PAD + (WIDTH - LABELS - 2 * PAD) / 2
HALF = (WIDTH - LABELS - 2 * PAD) / 2


@dataclass(frozen=True)
class Bar:
    label: str
    figure: str
    towards_fraud: bool
    x: float
    y: float
    width: float
    figure_x: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    height: int
    zero: float = ZERO
    width: int = WIDTH
    row: int = ROW


def explanation_chart(contributions: list[Contribution]) -> Chart:
    """Bars scaled to the largest contribution, in the order given (largest first)."""
    scale = max((abs(c.contribution) for c in contributions), default=0.0) or 1.0
    bars = []
    for i, c in enumerate(contributions):
        width = max(abs(c.contribution) / scale * HALF, 1.0)
        towards = c.contribution > 0
        x = ZERO if towards else ZERO - width
        bars.append(
            Bar(
                label=f"{c.feature} = {c.value:.4g}",
                figure=f"{c.contribution:+.3f}",
                towards_fraud=towards,
                x=round(x, 1),
                y=i * ROW + 6,
                width=round(width, 1),
                figure_x=round(x + width + 6 if towards else x - 6, 1),
            )
        )
    return Chart(bars, height=max(len(bars), 1) * ROW + 12)
