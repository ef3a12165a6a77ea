"""The Colab notebooks in colab/ run headless, top to bottom, in their TINY mode.

They run exactly as docs/getting-started.md tells a user to run them: with papermill, which
injects the values after the cell tagged 'parameters'. The kernel runs on one CPU device
with JAX's optimisations mostly off (compile time dominates these tiny runs). The synthetic
dataset is built once and shared by the quickstart and distillation notebooks.
"""

import ast
import logging
import os
import time

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(ROOT, "colab")
NOTEBOOKS = ("quickstart.ipynb", "distillation.ipynb", "real_data.ipynb")
# Seconds per notebook on the 2-core CI machine (measured about a third to half of this).
# Hang guards (generous: a shared CI machine may run 2-3x slower than an idle one).
BUDGET = {"quickstart.ipynb": 400, "distillation.ipynb": 500, "real_data.ipynb": 400}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def read(name):
    return nbformat.read(os.path.join(COLAB, name), as_version=4)


def parameters_cell(nb):
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "expected exactly one cell tagged 'parameters'"
    return tagged[0]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_is_understood_by_papermill(name, caplog):
    """papermill finds every variable of the parameters cell, with no warning.

    The reference is Python's own parse of the cell. papermill reads the cell line by line
    and gives up on a line with a second '=' (e.g. in its comment), warning "Unable to parse
    line" and later "Passed unknown parameter" for every value injected into it.
    """
    translators = pytest.importorskip("papermill.translators")
    cell = parameters_cell(read(name))
    assigned = [
        target.id
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
    ]
    assert "TINY" in assigned and "WORKDIR" in assigned
    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = translators.PythonTranslator.inspect(cell)
    assert [p.name for p in found] == assigned
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_headless_in_tiny_mode(name, data_dir, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    params = {"TINY": True, "WORKDIR": str(tmp_path / "runs"), "DATA_DIR": data_dir}
    if name == "real_data.ipynb":
        params["DATA_DIR"] = str(tmp_path / "tfds")  # SYSU-MM01's dummy folder, built here.
    # The kernel inherits this process's environment.
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    out = str(tmp_path / name)
    start = time.time()
    papermill.execute_notebook(
        os.path.join(COLAB, name),
        out,
        parameters=params,
        kernel_name="python3",
        cwd=COLAB,
        progress_bar=False,
        execution_timeout=BUDGET[name],
    )  # raises PapermillExecutionError naming the failing cell
    elapsed = time.time() - start
    assert elapsed < BUDGET[name], f"{name} took {elapsed:.0f} s"
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "TINY = True" in injected[0].source
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, "the notebook displayed no figure"
    print(f"{name}: {elapsed:.1f} s")


def test_documented_papermill_commands_match_the_notebooks():
    """docs/getting-started.md's headless commands name every notebook, and set only
    parameters its parameters cell defines (papermill only warns about unknown ones)."""
    import shlex

    with open(os.path.join(ROOT, "docs", "getting-started.md"), encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    documented = {}
    for line in text.splitlines():
        if line.startswith("papermill colab/"):
            tokens = shlex.split(line)
            names = [tokens[i + 1] for i, t in enumerate(tokens) if t == "-p"]
            documented[os.path.basename(tokens[1])] = names
    assert sorted(documented) == sorted(NOTEBOOKS)
    for name, names in documented.items():
        cell = parameters_cell(read(name))
        defined = {
            target.id
            for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)
            for target in node.targets
        }
        assert "TINY" in names and set(names) <= defined, (name, names, defined)
