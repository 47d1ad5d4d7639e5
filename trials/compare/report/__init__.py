"""The comparison report (docs/compare.md): Tables 7/8-style summary, figures and a verdict.

Layers, each importing only those before it: `analysis` (pure pandas/numpy: the contenders,
the seed spread, the verdict and its statistics) <- `text` (the sentences) <- `summary`
(`analyze`: everything the report shows, as plain data) <- `figures` (matplotlib, loaded
when drawing) <- `html` (`build_report`: report.html with the figures embedded, the PNGs and
summary.json beside it).
"""

from trials.compare.report.html import build_report
from trials.compare.report.summary import ReportError, analyze

__all__ = ["ReportError", "analyze", "build_report"]
