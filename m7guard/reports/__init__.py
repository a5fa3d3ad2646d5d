"""Reports rendered from a results file: html, junit, sarif, oscal, prom, poam (and the json
itself)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from m7guard.errors import M7guardError
from m7guard.results import Results


class ReportError(M7guardError):
    """A report could not be rendered or written."""


def _json(results: Results) -> str:
    import json

    return json.dumps(results.data, indent=2) + "\n"


def _renderers() -> dict[str, tuple[str, Callable[[Results], str]]]:
    from m7guard.reports import html, junit, oscal, poam, prom, sarif

    return {
        "json": ("results.json", _json),
        "html": ("report.html", html.render),
        "junit": ("junit.xml", junit.render),
        "sarif": ("results.sarif", sarif.render),
        "oscal": ("assessment-results.json", oscal.render),
        "prom": ("m7guard.prom", prom.render),
        "poam": ("poam.json", poam.render),
    }


FORMATS: tuple[str, ...] = ("json", "html", "junit", "sarif", "oscal", "prom", "poam")


def parse_formats(text: str) -> list[str]:
    """`json,html` -> ["json", "html"]; `all` -> every format; unknown names are an error."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ReportError(
            f"unknown report format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}"
        )
    return list(dict.fromkeys(names))


def render(
    results: Results,
    formats: Iterable[str],
    out_dir: Path,
    *,
    write_json: bool = True,
    trend_chart: str | None = None,
) -> dict[str, Path]:
    """Write results.json (unless write_json is False) and each requested format into out_dir;
    return format -> path. trend_chart: an SVG the HTML report shows (m7guard.history)."""
    renderers = _renderers()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    wanted = [f for f in formats if f != "json"]
    for fmt in (["json"] if write_json else []) + wanted:
        name, fn = renderers[fmt]
        path = out_dir / name
        if fmt == "html" and trend_chart is not None:
            from m7guard.reports import html

            text = html.render(results, trend_chart)
        else:
            text = fn(results)
        # A report is whole or absent: written beside the old one, then renamed over it.
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ReportError(f"cannot write {path}: {exc.strerror}") from exc
        written[fmt] = path
    return written
