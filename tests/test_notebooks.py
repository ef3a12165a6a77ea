"""The Colab notebooks in colab/ execute top to bottom in their TINY mode (nbclient).

Parameters are injected as papermill does: a cell tagged 'injected-parameters' right after
the cell tagged 'parameters'. The kernel runs on one CPU device with JAX's optimisations
mostly off (compile time dominates these tiny runs). The synthetic dataset is built once and
shared by the quickstart and distillation notebooks.
"""

import os
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

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


def inject(nb, params: dict):
    """Inserts `params` after the cell tagged 'parameters' (papermill's convention)."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "expected exactly one cell tagged 'parameters'"
    assert "TINY = False" in nb.cells[tagged[0]].source
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(tagged[0] + 1, cell)
    return nb


def execute(name, params, timeout):
    nb = inject(read(name), params)
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": COLAB}}
    )
    env = {
        **os.environ,
        "XLA_FLAGS": "",
        "JAX_DISABLE_MOST_OPTIMIZATIONS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    start = time.time()
    client.execute(env=env)
    return nb, time.time() - start


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_tiny_mode(name, data_dir, tmp_path):
    params = {"TINY": True, "WORKDIR": str(tmp_path / "runs"), "DATA_DIR": data_dir}
    if name == "real_data.ipynb":
        params["DATA_DIR"] = str(tmp_path / "tfds")  # SYSU-MM01's dummy folder, built here.
    nb, elapsed = execute(name, params, BUDGET[name])
    assert elapsed < BUDGET[name], f"{name} took {elapsed:.0f} s"
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, "the notebook displayed no figure"
    print(f"{name}: {elapsed:.1f} s")
