"""A report a reader can browse: ``reports/html/index.html`` and clean executed notebooks.

``tdpcr report html`` (``make report``; also the last step of ``tdpcr reproduce``) writes

* ``reports/html/NN_name.html``: each executed notebook (``reports/executed/*.ipynb``) rendered by
  nbconvert's ``lab`` template, every image embedded (one self-contained file each);
* ``reports/html/results.html``, ``ablations.html``, ``verdicts.html``: the markdown reports
  rendered, their figures (relative ``figures/*.png`` links) embedded as data URIs, so no link
  breaks when the folder is moved or served;
* ``reports/html/index.html``: links to all of them, written last.

Every file is written atomically. :func:`clean_executed` turns a papermill copy into a notebook
a reader can open: no jupytext pairing metadata (saving it in JupyterLab would otherwise write a
stray ``.py`` beside it) and signed as trusted in the local Jupyter signature database (its
outputs, e.g. widgets' HTML, show without "Trust notebook").
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat

from tdpcr_lib.core.io import atomic_path
from tdpcr_lib.core.paths import REPORTS_DIR
from tdpcr_lib.core.revision import git_sha

#: The markdown reports rendered beside the notebooks (those present).
MARKDOWN_REPORTS: tuple[str, ...] = ("results.md", "ablations.md", "verdicts.md")

_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")')


def clean_executed(path: str | Path) -> Path:
    """Remove jupytext pairing metadata from an executed notebook and sign it as trusted."""
    from nbformat.sign import NotebookNotary  # lazily: opens the signature database

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("jupytext", None)
    NotebookNotary().sign(notebook)
    with atomic_path(path, suffix=".ipynb") as tmp:
        nbformat.write(notebook, str(tmp))
    return path


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def embed_local_images(markup: str, base: Path) -> str:
    """``<img src="relative/path">`` → data URIs (files under ``base``); others unchanged."""

    def replace(match: re.Match) -> str:
        src = html.unescape(match.group(2))
        if re.match(r"^[a-z]+:", src) or src.startswith("/"):
            return match.group(0)
        target = (base / src).resolve()
        if not target.is_file():
            return match.group(0)
        return match.group(1) + _data_uri(target) + match.group(3)

    return _IMG_SRC.sub(replace, markup)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
        "line-height:1.45}table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}"
        "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}"
        "th:first-child,td:first-child{text-align:left}img{max-width:100%}"
        "code{background:#f4f4f4;padding:0 .2rem}</style></head><body>\n"
        f"{body}\n</body></html>\n"
    )


def render_markdown(path: Path) -> str:
    """A markdown report as a self-contained HTML page (its local images embedded)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    body = markdown2html_mistune(path.read_text(encoding="utf-8"))
    body = embed_local_images(body, path.parent)
    return _page(path.stem, '<p><a href="index.html">&larr; report index</a></p>\n' + body)


def render_notebook(path: Path) -> str:
    """An executed notebook as one HTML file (nbconvert ``lab`` template, images embedded)."""
    from nbconvert import HTMLExporter  # lazily: slow to import

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_filename(str(path))
    return body


def _write(path: Path, text: str) -> Path:
    with atomic_path(path, suffix=".html") as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def write_html_report(
    reports_dir: str | Path = REPORTS_DIR,
    out_dir: str | Path | None = None,
    executed_dir: str | Path | None = None,
    markdown: Sequence[str] = MARKDOWN_REPORTS,
) -> Path:
    """Render the executed notebooks and markdown reports of ``reports_dir``; returns the index.

    Parameters
    ----------
    reports_dir
        Folder holding ``results.md`` & co. and (by default) ``executed/``.
    out_dir
        Where the pages go (default ``reports_dir/html``).
    executed_dir
        The executed notebooks (default ``reports_dir/executed``).

    Raises
    ------
    FileNotFoundError
        Neither an executed notebook nor a markdown report exists (nothing to show yet).
    """
    reports_dir = Path(reports_dir)
    out_dir = Path(out_dir) if out_dir is not None else reports_dir / "html"
    executed_dir = Path(executed_dir) if executed_dir is not None else reports_dir / "executed"
    notebooks = sorted(executed_dir.glob("[0-9][0-9]_*.ipynb")) if executed_dir.is_dir() else []
    pages = [reports_dir / name for name in markdown if (reports_dir / name).is_file()]
    if not notebooks and not pages:
        raise FileNotFoundError(
            f"{reports_dir}: no executed notebooks ({executed_dir}) and no "
            f"{', '.join(markdown)}; run `make reproduce` (or `tdpcr "
            "reproduce`) first"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    links = []
    for notebook in notebooks:
        target = _write(out_dir / f"{notebook.stem}.html", render_notebook(notebook))
        links.append(("notebook", notebook.stem, target.name))
    for page in pages:
        target = _write(out_dir / f"{page.stem}.html", render_markdown(page))
        links.append(("report", page.name, target.name))
    items = {
        kind: "".join(
            f'<li><a href="{html.escape(href)}">{html.escape(label)}</a></li>' for k, label, href in links if k == kind
        )
        for kind in ("report", "notebook")
    }
    body = (
        f"<h1>tdpcr report</h1><p>Generated {time.strftime('%Y-%m-%d %H:%M %Z')} from git "
        f"<code>{html.escape(git_sha() or 'unknown')}</code> by <code>tdpcr report html</code>"
        "; every number comes from code that ran.</p>"
        f"<h2>Results</h2><ul>{items['report'] or '<li>none yet</li>'}</ul>"
        f"<h2>Executed notebooks</h2><ul>{items['notebook'] or '<li>none yet</li>'}</ul>"
    )
    return _write(out_dir / "index.html", _page("tdpcr report", body))  # last: the set is done
