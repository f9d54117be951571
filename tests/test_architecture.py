"""The package's shape: layers point one way, imports live at the top, modules stay small.

The layer contract is ``.importlinter`` (run by import-linter's ``lint-imports``); the layer
diagram and what each subpackage owns are in ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tdpcr_lib"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 400

#: Function-local imports that are deliberate: a heavy optional dependency imported on use, or
#: the CLI's work modules (torch, rasterio, nbconvert) loaded only once a command runs, so that
#: ``--help``, usage errors and an early Ctrl-C answer at once (docs/errors.md).
LAZY_OK: set[tuple[str, str]] = {
    ("tdpcr_lib/cli/data.py", "tdpcr_lib.datasets.sen12mscr.download"),
    ("tdpcr_lib/cli/data.py", "tdpcr_lib.datasets.sources"),
    ("tdpcr_lib/cli/data.py", "tdpcr_lib.datasets.synthetic.tiles"),
    ("tdpcr_lib/cli/data.py", "tdpcr_lib.inference.offset"),
    ("tdpcr_lib/cli/data.py", "tdpcr_lib.inference.stack_s2"),
    ("tdpcr_lib/cli/evaluate.py", "tdpcr_lib.core.runtime"),
    ("tdpcr_lib/cli/evaluate.py", "tdpcr_lib.datasets.sources"),
    ("tdpcr_lib/cli/evaluate.py", "tdpcr_lib.evaluation.evaluate"),
    ("tdpcr_lib/cli/evaluate.py", "tdpcr_lib.models.checkpoint"),
    ("tdpcr_lib/cli/predict.py", "tdpcr_lib.core.runtime"),
    ("tdpcr_lib/cli/predict.py", "tdpcr_lib.inference.scene"),
    ("tdpcr_lib/cli/report.py", "tdpcr_lib.notebook.html_report"),
    ("tdpcr_lib/cli/reproduce.py", "tdpcr_lib.notebook.html_report"),
    ("tdpcr_lib/cli/reproduce.py", "tdpcr_lib.notebook.reproduce"),
    ("tdpcr_lib/cli/train.py", "tdpcr_lib.core.runtime"),
    ("tdpcr_lib/cli/train.py", "tdpcr_lib.models.config"),
    ("tdpcr_lib/cli/train.py", "tdpcr_lib.plot.curves"),
    ("tdpcr_lib/cli/train.py", "tdpcr_lib.training.config"),
    ("tdpcr_lib/cli/train.py", "tdpcr_lib.training.presets"),
    ("tdpcr_lib/cli/train.py", "tdpcr_lib.training.run"),
    # s2cloudless imports lightgbm and sentinelhub: only SEN12MS-CR manifests with its mask pay
    ("tdpcr_lib/datasets/sen12mscr/cloudmask.py", "tdpcr_lib.datasets.sen12mscr.s2cloudless"),
}


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_import_layers_contract_holds():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is a dev dependency: pip install -e '.[dev]'"
    done = subprocess.run(
        [lint, "--config", str(REPO / ".importlinter")], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_function_local_imports_between_package_modules(path):
    tree = ast.parse(path.read_text())
    local = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level > 0 or module == "tdpcr_lib" or module.startswith("tdpcr_lib."):
                    local.append((module, node.lineno))
            elif isinstance(node, ast.Import):
                local += [(a.name, node.lineno) for a in node.names if a.name.startswith("tdpcr_lib")]
    local = [(m, line) for m, line in local if (_rel(path), m) not in LAZY_OK]
    assert not local, f"{_rel(path)}: move these imports to the top of the module: {local}"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_modules_stay_small_enough_to_read(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines (> {MAX_LINES}): split it"


#: Each concept of the paper, found by its name (docs/decisions.md maps them to the figure).
PAPER_CONCEPTS = {
    "PromptGenerator": "tdpcr_lib/models/prompt.py",
    "PromptGuidedFusion": "tdpcr_lib/models/pgf.py",
    "Encoder": "tdpcr_lib/models/tdpcr.py",
    "SharedDecoder": "tdpcr_lib/models/tdpcr.py",
    "SegmentationDecoder": "tdpcr_lib/models/tdpcr.py",
    "reconstruction_loss": "tdpcr_lib/losses.py",
    "segmentation_loss": "tdpcr_lib/losses.py",
    "TRAINABLE_SETS": "tdpcr_lib/training/phases.py",
}


@pytest.mark.parametrize("name", sorted(PAPER_CONCEPTS))
def test_each_paper_concept_is_found_by_its_name(name):
    tree = ast.parse((REPO / PAPER_CONCEPTS[name]).read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    defined |= {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign | ast.AnnAssign)
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Name)
    }
    assert name in defined


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_names_exist(doc):
    """Every ``tdpcr_lib.x.y`` a document names can be imported (no stale module paths)."""
    names = {m.rstrip(".") for m in re.findall(r"tdpcr_lib(?:\.[A-Za-z_]\w*)+\.?", doc.read_text())}
    stale = sorted(n for n in names if not _resolves(n))
    assert not stale, f"{doc.name} names what does not exist: {stale}"


def test_architecture_page_names_every_subpackage():
    """docs/architecture.md is the newcomer's map: each subpackage of tdpcr_lib appears in it as
    ``path/`` (a new subpackage without a row fails here), and the README stays short."""
    text = (REPO / "docs" / "architecture.md").read_text()
    package = REPO / "tdpcr_lib"
    subpackages = sorted(
        str(init.parent.relative_to(package)) for init in package.rglob("__init__.py") if init.parent != package
    )
    assert subpackages and "datasets/luojiaset" in subpackages
    missing = [name for name in subpackages if f"`{name}/`" not in text]
    assert not missing, f"docs/architecture.md does not name {missing}"
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports, ``TYPE_CHECKING``-only imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tdpcr_lib"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
    return found & known


def test_no_import_cycle_between_modules():
    """Layers are checked per subpackage by import-linter; inside a subpackage two modules must
    not import each other either (not even for annotations only: that hides a tangled design)."""
    names = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p for p in MODULES}
    graph = {name: _imported_modules(path, set(names)) - {name} for name, path in names.items()}
    cycles, done = [], set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append(trail[trail.index(name) :] + [name])
            return
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert not cycles, f"import cycles: {[' -> '.join(c) for c in cycles[:5]]}"
