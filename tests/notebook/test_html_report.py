"""The browsable report: ``tdpcr report html`` → ``reports/html/index.html``; clean executed copies."""

from __future__ import annotations

import base64
import io
import re

import matplotlib
import nbformat
import pytest
from nbformat.sign import NotebookNotary

from tdpcr_lib.cli import report as report_cli
from tdpcr_lib.notebook.html_report import clean_executed, write_html_report

matplotlib.use("Agg")


def _png() -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _executed(path, title):
    nb = nbformat.v4.new_notebook()
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    code = nbformat.v4.new_code_cell("plot()", execution_count=1)
    code.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"image/png": base64.b64encode(_png()).decode(), "text/plain": "<Figure>"}
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), code]
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def reports(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))  # signature database
    root = tmp_path / "reports"
    (root / "executed").mkdir(parents=True)
    (root / "figures").mkdir()
    _executed(root / "executed" / "01_train_phase1.ipynb", "Phase 1")
    _executed(root / "executed" / "05_compare_visually.ipynb", "Compare")
    (root / "figures" / "per_bucket.png").write_bytes(_png())
    (root / "ablations.md").write_text(
        "# Ablations\n\n| model | mIoU (%) |\n|---|---:|\n| TDP-CR | 41.2 |\n\n![per bucket](figures/per_bucket.png)\n"
    )
    (root / "results.md").write_text("# Results\n\nPSNR 30.1 dB\n")
    return root


def test_index_links_every_notebook_and_report_with_images_embedded(reports):
    index = write_html_report(reports)
    assert index == reports / "html" / "index.html"
    text = index.read_text()
    for page in ("01_train_phase1.html", "05_compare_visually.html", "results.html", "ablations.html"):
        assert f'href="{page}"' in text and (reports / "html" / page).is_file()
    assert "verdicts.html" not in text  # absent reports are not linked
    notebook = (reports / "html" / "05_compare_visually.html").read_text()
    assert "data:image/png;base64," in notebook and "Compare" in notebook
    ablations = (reports / "html" / "ablations.html").read_text()
    assert "<table>" in ablations and "41.2" in ablations
    assert "data:image/png;base64," in ablations
    assert not re.search(r'src="figures/', ablations)  # no relative link left to break
    assert not list((reports / "html").glob(".*")), "no temporaries left"


def test_executed_copies_are_unpaired_and_trusted(reports):
    path = clean_executed(reports / "executed" / "01_train_phase1.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert "jupytext" not in nb.metadata
    assert NotebookNotary().check_signature(nb)


def test_cli_and_nothing_to_report(reports, tmp_path, capsys):
    assert report_cli.main(["html", "--reports", str(reports)]) == 0
    assert "index.html" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report_cli.main(["html", "--reports", str(empty)]) == 3
    err = capsys.readouterr().err
    assert "make reproduce" in err and len(err.strip().splitlines()) == 1
