"""pyproject.toml, environment.yml and the Makefile declare the same dependency set.

environment.yml (conda route) may additionally list: ``python``, ``pip``, ``torchvision`` (declared
but never imported by satellite-cloud-generator), the ``dev``/``test`` extras, ``-e .`` and
``satellite-cloud-generator`` (pyproject's optional ``synth`` extra; the Makefile and the one-line
hint of ``tdpcr data synth`` install it with ``--no-deps`` so pip never swaps the CPU torch for a
CUDA build). The conda name ``pytorch`` is pip's ``torch``.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tdpcr_lib.datasets.synthetic.clouds import CLOUD_GENERATOR_INSTALL

REPO = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}
ENV_ONLY = {"python", "pip", "torchvision"}
NO_DEPS_PIP = "satellite-cloud-generator"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _pyproject_deps() -> dict[str, str]:
    return {_norm(r.name): str(r.specifier) for r in map(Requirement, _pyproject()["dependencies"])}


def _extras() -> dict[str, str]:
    extras = {}
    for group in ("dev", "test"):
        for req in map(Requirement, _pyproject()["optional-dependencies"][group]):
            extras[_norm(req.name)] = str(req.specifier)
    return extras


def _environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _conda_spec(entry: str) -> tuple[str, str]:
    """``'pytorch>=2.3'`` → ``('torch', '>=2.3')``; conda's ``python=3.11`` → ``('python', '==3.11')``."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", entry)
    assert match, entry
    name, spec = match.groups()
    if re.fullmatch(r"=[^=].*", spec):
        spec = "=" + spec
    name = CONDA_TO_PIP.get(_norm(name), _norm(name))
    return name, str(Requirement(f"x{spec}").specifier) if spec else ""


def _environment_deps() -> tuple[dict[str, str], dict[str, str], list[str]]:
    conda, pip, editable = {}, {}, []
    for entry in _environment()["dependencies"]:
        if isinstance(entry, dict):
            for item in entry["pip"]:
                if item.startswith("-e"):
                    editable.append(item)
                else:
                    req = Requirement(item)
                    pip[_norm(req.name)] = str(req.specifier)
        else:
            name, spec = _conda_spec(entry)
            conda[name] = spec
    return conda, pip, editable


def test_environment_uses_conda_forge_and_pins_python():
    env = _environment()
    assert env["channels"] == ["conda-forge", "nodefaults"]
    conda, _, editable = _environment_deps()
    assert conda["python"] == "==3.11"
    assert Requirement(f"python{_pyproject()['requires-python']}").specifier.contains("3.11.9")
    assert editable == ["-e ."]


def test_every_package_dependency_is_in_environment_yml_with_the_same_bounds():
    conda, pip, _ = _environment_deps()
    listed = {**conda, **pip}
    for name, spec in _pyproject_deps().items():
        assert name in listed, f"{name} is in pyproject.toml but not in environment.yml"
        assert listed[name] == spec, f"{name}: pyproject {spec!r} vs environment.yml {listed[name]!r}"


def test_environment_yml_lists_nothing_undeclared():
    conda, pip, _ = _environment_deps()
    allowed = set(_pyproject_deps()) | set(_extras()) | ENV_ONLY | {NO_DEPS_PIP}
    extra = (set(conda) | set(pip)) - allowed
    assert not extra, f"environment.yml lists packages pyproject.toml does not declare: {extra}"
    missing_extras = set(_extras()) - set(conda) - set(pip)
    assert not missing_extras, f"dev/test extras missing from environment.yml: {missing_extras}"
    for name, spec in _extras().items():
        assert {**conda, **pip}[name] == spec, name


def test_no_deps_package_is_pinned_alike_in_makefile_and_environment():
    _, pip, _ = _environment_deps()
    pin = pip[NO_DEPS_PIP]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(rf"pip install[^\n]*--no-deps[^\n]*{NO_DEPS_PIP}{re.escape(pin)}", makefile), (
        f"the Makefile must install {NO_DEPS_PIP}{pin} with --no-deps"
    )
    assert NO_DEPS_PIP not in _pyproject_deps()  # else pip would pull torchvision (and CUDA torch)
    synth = {_norm(r.name): str(r.specifier) for r in map(Requirement, _pyproject()["optional-dependencies"]["synth"])}
    assert synth == {NO_DEPS_PIP: pin}, "pyproject's synth extra must pin the same version"
    assert CLOUD_GENERATOR_INSTALL == f"pip install --no-deps {NO_DEPS_PIP}{pin}"


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution → files of tdpcr_lib that import one of its modules directly."""
    module_to_dist = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in (REPO / "tdpcr_lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "tdpcr_lib":
                    continue
                for dist in module_to_dist.get(top, [top]):
                    found.setdefault(_norm(dist), set()).add(path.name)
    return found


def test_every_import_is_declared_or_guaranteed_by_a_declared_dependency():
    declared = set(_pyproject_deps()) | {NO_DEPS_PIP}
    guaranteed = set(declared)
    for dist in declared:
        try:
            reqs = requires(dist) or []
        except PackageNotFoundError:  # pragma: no cover - broken environment
            pytest.fail(f"declared dependency {dist} is not installed")
        guaranteed |= {_norm(Requirement(r).name) for r in reqs if "extra ==" not in r}
    undeclared = {d: sorted(files) for d, files in _imported_distributions().items() if d not in guaranteed}
    assert not undeclared, f"tdpcr_lib imports undeclared packages: {undeclared}"
