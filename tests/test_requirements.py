"""The dependency lists say the same: pyproject.toml, requirements.txt, requirements-dev.txt and the imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
# Import names that differ from the distribution's name.
DISTRIBUTIONS = {"PIL": "pillow", "cv2": "opencv-python-headless", "skimage": "scikit-image", "sklearn": "scikit-learn"}
# Needed at run time without being imported by emoreply: transformers reads the base model's GGUF file with it.
INDIRECT = {"gguf"}
# Needed by training without being imported: huggingface_hub renders the model cards' templates with it.
INDIRECT_TRAIN = {"jinja2"}
TOOLS = {"ruff"}  # run, never imported
LOCAL = {"emoreply", "app", "bench", "tests", "train"}  # this repository's own modules


def python_files(*patterns: str) -> set[Path]:
    return {path for pattern in patterns for path in ROOT.glob(pattern)}


def imported_distributions(files: set[Path]) -> set[str]:
    """The third-party distributions ``files`` import anywhere (lazy imports included)."""
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    third_party = names - set(sys.stdlib_module_names) - LOCAL
    return {canonicalize_name(DISTRIBUTIONS.get(name, name)) for name in third_party}


def requirements(lines: list[str]) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(req.name): req for req in reqs}


def requirements_file(name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [line for line in lines if line]


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = requirements(PROJECT["dependencies"])
EXTRAS = {name: requirements(lines) for name, lines in PROJECT["optional-dependencies"].items()}
TRAINING = python_files("train/**/*.py", "emoreply/training/**/*.py", "bench/**/*.py")
APP = python_files("app.py", "emoreply/**/*.py") - TRAINING


def test_runtime_dependencies_are_what_the_app_imports():
    assert set(RUNTIME) == imported_distributions(APP) | INDIRECT


def test_train_extra_is_what_training_evaluation_and_bench_import_beyond_the_runtime():
    assert set(EXTRAS["train"]) == (imported_distributions(TRAINING) | INDIRECT_TRAIN) - set(RUNTIME)


def test_dev_extra_covers_the_tests():
    dev = set(EXTRAS["dev"])
    assert "emoreply" in dev  # emoreply[train]: the tests train and evaluate
    assert imported_distributions(python_files("tests/**/*.py")) - set(RUNTIME) - set(EXTRAS["train"]) <= dev
    assert TOOLS <= dev


def test_requirements_files_match_pyproject():
    app = requirements(requirements_file("requirements.txt"))
    assert app.keys() == RUNTIME.keys()
    for name, req in app.items():
        if name == "torch":  # pinned for the Space, within pyproject's range
            (pin,) = req.specifier
            assert pin.operator == "==" and RUNTIME[name].specifier.contains(pin.version)
        else:
            assert req.specifier == RUNTIME[name].specifier, name
    dev_lines = requirements_file("requirements-dev.txt")
    assert dev_lines[0] == "-r requirements.txt"
    extras = {**EXTRAS["train"], **EXTRAS["dev"]}
    del extras["emoreply"]
    dev = requirements(dev_lines[1:])
    assert dev.keys() == extras.keys()
    assert all(req.specifier == extras[name].specifier for name, req in dev.items())
