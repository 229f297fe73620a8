"""Rendering a report: ``index.md`` (plots as PNG files beside it), ``index.html``
(self-contained: plots as base64 data URIs, no script, a Content-Security-Policy that forbids
loading anything) and ``results.csv``.

Every string that comes from the user (labels, descriptions, layer names, error texts, paths) is
escaped with :func:`html.escape` in HTML; in Markdown, table cells escape ``|`` and text escapes
the characters Markdown would interpret."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib import rc_context

from quantsim.report.data import ReportData, ReportError
from quantsim.report.plots import (
    STYLE,
    Plot,
    Skip,
    palette,
    plot_bitwidth,
    plot_cost,
    plot_learning_curves,
    plot_radix,
    plot_radix_position,
    plot_range,
    plot_rounding,
    plot_sparsity,
)
from quantsim.report.tables import (
    Table,
    build_table,
    ordered_unique,
    prepare,
    reference_table,
    results_csv_frame,
    run_problem,
)

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    directory: Path
    markdown: Path
    html: Path
    csv: Path
    figures: list[Path] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # keys of the plots drawn
    omitted: list[tuple[str, str]] = field(default_factory=list)  # (title, reason)
    table: Table | None = None


# -- provenance ----------------------------------------------------------------------------------


def quantsim_version() -> str:
    from quantsim import __version__

    return str(__version__)


def git_commit(path: str | Path | None = None) -> str:
    """``<short hash>`` of the checkout holding quantsim (``+dirty`` with local changes), or
    ``unknown`` outside a git checkout."""
    where = Path(path) if path else Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# -- escaping ------------------------------------------------------------------------------------


def esc(text: Any) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|!~])")


def md_text(text: Any) -> str:
    """Markdown-escape a user string for running text or a table cell (``|`` included, and
    ``<``/``>`` so no raw HTML gets through to renderers that allow it)."""
    s = "" if text is None else str(text)
    s = s.replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", s)


def md_code(text: Any) -> str:
    """Inline code, with a fence longer than any backtick run inside."""
    s = ("" if text is None else str(text)).replace("\n", " ")
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


# -- building blocks -----------------------------------------------------------------------------


def _cell_text(table: Table, pol: str, wl: str) -> tuple[str, str | None]:
    cell = table.cells.get((pol, wl))
    if cell is None:
        return "—", None
    ref = None
    if cell.reference is not None:
        ref = f"{cell.reference:.2f}"
    return cell.text, ref


def _png(plot: Plot) -> bytes:
    buf = io.BytesIO()
    with rc_context(STYLE):
        plot.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white",
                            metadata={"Software": None})
    return buf.getvalue()


def _plots(data: ReportData, prep: pd.DataFrame) -> list[Plot | Skip]:
    colors = palette(ordered_unique(prep["policy"]))
    with rc_context(STYLE):
        return [
            plot_bitwidth(prep, colors),
            plot_radix_position(prep, colors),
            plot_learning_curves(prep, data.history, colors),
            plot_rounding(prep, colors),
            plot_sparsity(prep, data.stats, colors),
            plot_range(prep, data.stats, colors),
            plot_radix(prep, data.stats, colors),
            plot_cost(prep, colors),
        ]


def _normalise_history(history: pd.DataFrame | None) -> pd.DataFrame | None:
    if history is None:
        return None
    h = history.copy()
    if "run_id" not in h.columns and "id" in h.columns:
        h = h.rename(columns={"id": "run_id"})
    if "run_id" in h.columns:
        h["run_id"] = h["run_id"].astype(str)
    return h


def _unfinished(prep: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for r in prep.to_dict("records"):
        prob = run_problem(r)
        if prob is not None:
            rows.append({"policy": r["policy"], "workload": r["workload"],
                         "label": r.get("label"), "seed": r.get("seed"), "shown": prob,
                         "status": r.get("status"), "error": r.get("error")})
    return rows


# -- the report ----------------------------------------------------------------------------------


def write_report(data: ReportData, out_dir: str | Path, *, command: str | None = None,
                 date: _dt.datetime | None = None, commit: str | None = None) -> Report:
    """Render ``data`` into ``out_dir`` (created; files of an earlier report there are
    replaced). ``command`` is the command line that regenerates the report."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"output {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("fig-*.png"):
        old.unlink()

    prep = prepare(data.results)
    history = _normalise_history(data.history)
    stats = data.stats
    if stats is not None and "run_id" in stats.columns:
        stats = stats.assign(run_id=stats["run_id"].astype(str))
    data = ReportData(results=data.results, history=history, stats=stats,
                      reference=data.reference, title=data.title,
                      description=data.description, store_path=data.store_path,
                      study_path=data.study_path, reference_path=data.reference_path,
                      notes=list(data.notes), findings=data.findings)
    table = build_table(prep, data.reference)
    items = _plots(data, prep)

    date = date or _dt.datetime.now(_dt.timezone.utc)
    meta = {
        "command": command or f"quantsim report {data.store_path or 'STORE'} -o {out}",
        "store": _display_path(data.store_path) or "(frames given in Python)",
        "study": _display_path(data.study_path),
        "version": quantsim_version(),
        "commit": commit or git_commit(),
        "date": date.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
        "run_commits": ", ".join(str(c) for c in ordered_unique(
            prep["git_commit"].dropna())) if "git_commit" in prep.columns else "",
        "reference": _display_path(data.reference_path),
    }

    report = Report(directory=out, markdown=out / "index.md", html=out / "index.html",
                    csv=out / "results.csv", table=table)
    figures: list[tuple[Plot, str, bytes]] = []
    for item in items:
        if isinstance(item, Skip):
            report.omitted.append((item.title, item.reason))
            continue
        png = _png(item)
        name = f"fig-{item.key}.png"
        (out / name).write_bytes(png)
        report.figures.append(out / name)
        report.sections.append(item.key)
        figures.append((item, name, png))
    if data.reference is None:
        report.omitted.append(("Published numbers", "the study names no reference file "
                               "(reference = \"references/....csv\")"))

    csv = results_csv_frame(prep, table)
    csv.to_csv(report.csv, index=False)
    ref_tab = reference_table(data.reference) if data.reference is not None else None
    unfinished = _unfinished(prep)
    report.markdown.write_text(_markdown(data, meta, table, ref_tab, unfinished, figures,
                                         report.omitted), encoding="utf-8")
    report.html.write_text(_html(data, meta, table, ref_tab, unfinished, figures,
                                 report.omitted), encoding="utf-8")
    for item, _, _ in figures:
        item.figure.clear()
    return report


# -- Markdown ------------------------------------------------------------------------------------


def _inline_html(text: str) -> str:
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


def findings_html(text: str) -> str:
    """The small Markdown subset findings are written in, as HTML: paragraphs, ``-`` lists,
    ``###`` headings, pipe tables (kept as preformatted text), `code`, **bold**, [links](url)."""
    parts: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if all(ln.lstrip().startswith("|") for ln in lines):
            parts.append(f"<pre>{esc(block)}</pre>")
        elif lines[0].startswith("#"):
            head = lines[0].lstrip("#").strip()
            parts.append(f"<h3>{_inline_html(head)}</h3>")
            if len(lines) > 1:
                parts.append(findings_html("\n".join(lines[1:])))
        elif lines[0].startswith("- "):
            items: list[str] = []
            for ln in lines:
                if ln.startswith("- "):
                    items.append(ln[2:])
                elif items:
                    items[-1] += " " + ln.strip()
            parts.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in items)
                         + "</ul>")
        else:
            parts.append(f"<p>{_inline_html(' '.join(ln.strip() for ln in lines))}</p>")
    return "\n".join(parts)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _markdown(data: ReportData, meta: dict[str, Any], table: Table, ref_tab: Any,
              unfinished: list[dict[str, Any]], figures: list[tuple[Plot, str, bytes]],
              omitted: list[tuple[str, str]]) -> str:
    L: list[str] = [f"# {md_text(data.title)}", ""]
    if data.description:
        L += [md_text(data.description), ""]
    L += [f"- Regenerate: {md_code(meta['command'])}",
          f"- Store: {md_code(meta['store'])}"]
    if meta["study"]:
        L.append(f"- Study file: {md_code(meta['study'])}")
    L += [f"- quantsim {md_text(meta['version'])}, git commit {md_code(meta['commit'])}"
          + (f" (runs recorded at {md_code(meta['run_commits'])})" if meta["run_commits"]
             else ""),
          f"- Date: {md_text(meta['date'])}",
          "- Files: [results.csv](results.csv) (one row per run)", ""]
    for note in data.notes:
        L += [f"> Note: {md_text(note)}", ""]
    if data.findings.strip():
        L += ["## Findings", "", data.findings.strip(), ""]

    L += ["## Test error", "",
          "Test error (%) at the best validation epoch, mean ± std over seeds (n finished "
          "runs); runs that diverged or failed are listed in their cell. Bits include the sign."
          + (" *Published* numbers are side by side where the reference has the same policy "
             "and data set." if table.has_reference else ""), ""]
    head = ["policy", "bits per role"]
    for wl in table.workloads:
        head.append(md_text(wl))
        if table.has_reference:
            head.append(f"{md_text(wl)} published")
    L += [_md_row(head), _md_row(["---"] * len(head))]
    for pol in table.policies:
        row = [md_text(pol), md_text(table.bits.get(pol, ""))]
        for wl in table.workloads:
            text, ref = _cell_text(table, pol, wl)
            row.append(md_text(text))
            if table.has_reference:
                row.append(md_text(ref) if ref else "")
        L.append(_md_row(row))
    L += ["", "Policies:", ""]
    for pol in table.policies:
        L.append(f"- {md_text(pol)}: {md_code(table.precision.get(pol, ''))}")
    L.append("")
    if ref_tab is not None:
        L += ["### Published numbers", "",
              "Test error (%) as published: " + "; ".join(md_text(c) for c in table.citations)
              + (f" (from {md_code(meta['reference'])})" if meta["reference"] else "") + ".", ""]
        cols = list(ref_tab.columns)
        L += [_md_row([md_text(c) for c in cols]), _md_row(["---"] * len(cols))]
        for r in ref_tab.itertuples(index=False):
            L.append(_md_row([md_text(_fmt(v)) for v in r]))
        L.append("")
    if unfinished:
        L += ["## Runs that did not finish", "",
              _md_row(["policy", "workload", "seed", "status", "shown as"]),
              _md_row(["---"] * 5)]
        for u in unfinished:
            L.append(_md_row([md_text(u["policy"]), md_text(u["workload"]), md_text(u["seed"]),
                              md_text(u["status"]), md_text(u["shown"])]))
        L += ["", "Full error texts are in results.csv (column `error`) and in index.html.", ""]
    for plot, name, _ in figures:
        L += [f"## {md_text(plot.title)}", "", f"![{md_text(plot.title)}]({name})", "",
              md_text(plot.caption), ""]
    if omitted:
        L += ["## Omitted sections", ""]
        L += [f"- {md_text(t)}: {md_text(r)}." for t, r in omitted]
        L.append("")
    return "\n".join(L)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:
            return ""
        return f"{v:.2f}"
    return str(v)


# -- HTML ----------------------------------------------------------------------------------------


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: .2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; white-space: nowrap; }
td.num.problem { white-space: normal; min-width: 12em; max-width: 28em; text-align: left; }
td.bits { min-width: 16em; }
td .ref { color: #555; font-style: italic; } .problem { color: #b00020; }
.meta { font-size: .9em; color: #444; } .meta code { background: #f4f4f4; padding: 0 .2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .88em; color: #444; }
pre { white-space: pre-wrap; word-break: break-word; font-size: .8em; background: #f8f8f8;
      padding: .5em; max-height: 12em; overflow: auto; }
"""


def _details(err: str) -> str:
    if not err:
        return ""
    return f"<details><summary>full text</summary><pre>{esc(err)}</pre></details>"


def _html(data: ReportData, meta: dict[str, Any], table: Table, ref_tab: Any,
          unfinished: list[dict[str, Any]], figures: list[tuple[Plot, str, bytes]],
          omitted: list[tuple[str, str]]) -> str:
    H: list[str] = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(data.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{esc(data.title)}</h1>"]
    if data.description:
        H.append(f"<p>{esc(data.description)}</p>")
    H.append('<ul class="meta">')
    H.append(f"<li>Regenerate: <code>{esc(meta['command'])}</code></li>")
    H.append(f"<li>Store: <code>{esc(meta['store'])}</code></li>")
    if meta["study"]:
        H.append(f"<li>Study file: <code>{esc(meta['study'])}</code></li>")
    runs = (f" (runs recorded at <code>{esc(meta['run_commits'])}</code>)"
            if meta["run_commits"] else "")
    H.append(f"<li>quantsim {esc(meta['version'])}, git commit "
             f"<code>{esc(meta['commit'])}</code>{runs}</li>")
    H.append(f"<li>Date: {esc(meta['date'])}</li>")
    H.append("<li>Files: results.csv (one row per run), index.md with the figures as PNG "
             "files</li></ul>")
    for note in data.notes:
        H.append(f'<p class="problem">Note: {esc(note)}</p>')
    if data.findings.strip():
        H += ['<h2 id="findings">Findings</h2>', findings_html(data.findings)]

    H += ['<h2 id="table">Test error</h2>',
          "<p>Test error (%) at the best validation epoch, mean ± std over seeds (n finished "
          "runs); runs that diverged or failed are listed in their cell. Bits include the sign."
          + (" <i>Published</i> numbers are side by side where the reference has the same "
             "policy and data set." if table.has_reference else "") + "</p>",
          '<table class="results"><thead><tr><th>policy</th><th>bits per role</th>']
    for wl in table.workloads:
        H.append(f"<th>{esc(wl)}</th>")
        if table.has_reference:
            H.append(f"<th>{esc(wl)}<br><i>published</i></th>")
    H.append("</tr></thead><tbody>")
    for pol in table.policies:
        H.append(f"<tr><td>{esc(pol)}</td><td class=\"bits\">{esc(table.bits.get(pol, ''))}</td>")
        for wl in table.workloads:
            cell = table.cells.get((pol, wl))
            text, ref = _cell_text(table, pol, wl)
            cls = ' class="num problem"' if cell is not None and cell.problems else \
                ' class="num"'
            H.append(f"<td{cls}>{esc(text)}</td>")
            if table.has_reference:
                H.append(f'<td class="num"><span class="ref">{esc(ref or "")}</span></td>')
        H.append("</tr>")
    H.append("</tbody></table>")
    H.append("<details open><summary>Policies (precision specs)</summary><ul>")
    for pol in table.policies:
        H.append(f"<li>{esc(pol)}: <code>{esc(table.precision.get(pol, ''))}</code></li>")
    H.append("</ul></details>")
    if ref_tab is not None:
        src = f" (from <code>{esc(meta['reference'])}</code>)" if meta["reference"] else ""
        H += ["<h3>Published numbers</h3>",
              f"<p>Test error (%) as published: {esc('; '.join(table.citations))}{src}.</p>",
              "<table><thead><tr>"
              + "".join(f"<th>{esc(c)}</th>" for c in ref_tab.columns) + "</tr></thead><tbody>"]
        for r in ref_tab.itertuples(index=False):
            H.append("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in r) + "</tr>")
        H.append("</tbody></table>")
    if unfinished:
        H += ['<h2 id="unfinished">Runs that did not finish</h2>',
              "<table><thead><tr><th>policy</th><th>workload</th><th>seed</th>"
              "<th>shown as</th><th>error text</th></tr></thead><tbody>"]
        for u in unfinished:
            err = _fmt(u["error"])
            H.append(f"<tr><td>{esc(u['policy'])}</td><td>{esc(u['workload'])}</td>"
                     f"<td>{esc(u['seed'])}</td><td class=\"problem\">{esc(u['shown'])}</td>"
                     f"<td>{_details(err)}</td></tr>")
        H.append("</tbody></table>")
    for plot, _name, png in figures:
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        H += [f'<h2 id="{esc(plot.key)}">{esc(plot.title)}</h2>', "<figure>",
              f'<img src="{uri}" alt="{esc(plot.title)}">',
              f"<figcaption>{esc(plot.caption)}</figcaption>", "</figure>"]
    if omitted:
        H += ['<h2 id="omitted">Omitted sections</h2>', "<ul>"]
        H += [f"<li>{esc(t)}: {esc(r)}.</li>" for t, r in omitted]
        H.append("</ul>")
    H += ["</body>", "</html>", ""]
    return "\n".join(H)


def _display_path(path: str | Path | None) -> str | None:
    """A path as the report shows it: relative to the working directory when inside it (so
    a report regenerated in another clone names the same files), else unchanged."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
