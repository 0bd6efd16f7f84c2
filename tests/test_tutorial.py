"""The tutorial notebook (docs/tutorial.ipynb) runs from top to bottom on real MNIST, and the
results it shows in the documentation are the ones it produces.

The notebook is stored with its outputs, so the documentation site shows them without
running it. After changing the notebook (or anything that changes its numbers), run its
cells again and store them with::

    python tests/test_tutorial.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"
#: Seconds the whole notebook may take (it needs about one minute on two loaded cores).
BUDGET_S = 170
#: Largest stored notebook, outputs included (keeps the repository and the page light).
MAX_BYTES = 200_000


def execute(path: Path, cwd: Path):  # -> nbformat.NotebookNode
    """Run every cell of the notebook at ``path`` in a fresh kernel (working folder ``cwd``);
    raises ``nbclient.exceptions.CellExecutionError`` at the first cell that fails."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def _tagged_text(notebook, tag: str) -> list[str]:
    """The printed output of the cells tagged ``tag``."""
    return ["".join(out.get("text", "") for out in cell.get("outputs", [])
                    if out.get("output_type") == "stream" and out.get("name") == "stdout")
            for cell in notebook.cells if tag in cell.get("metadata", {}).get("tags", [])]


def test_stored_notebook_is_small_and_has_no_errors() -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert NOTEBOOK.stat().st_size < MAX_BYTES
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    assert outputs, "store the notebook with its outputs: python tests/test_tutorial.py"
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = " ".join(cell.source for cell in notebook.cells)
    assert not re.findall(r"\b(issues?|sessions?|pass|passes)\b", text, re.IGNORECASE)


@pytest.mark.slow
@pytest.mark.integration
def test_tutorial_runs_and_shows_what_it_produces(tmp_path: Path) -> None:
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from symstdp_genn.data import default_data_dir, load_dataset
    from symstdp_genn.errors import UserError

    try:  # where the notebook's train() will look (the checkout's data/ unless told)
        load_dataset("mnist", default_data_dir())
    except UserError as exc:  # no registry or mirror reachable
        pytest.skip(f"MNIST not available: {exc}")
    tic = time.perf_counter()
    executed = execute(NOTEBOOK, tmp_path)
    seconds = time.perf_counter() - tic
    assert seconds < BUDGET_S, f"the tutorial took {seconds:.0f} s"
    import nbformat

    stored = nbformat.read(NOTEBOOK, as_version=4)
    fresh = _tagged_text(executed, "numbers")
    assert fresh and fresh[0].strip(), "the comparison table printed nothing"
    assert "identical: True" in fresh[0], fresh[0]
    assert _tagged_text(stored, "numbers") == fresh, (
        "docs/tutorial.ipynb shows other numbers than it produces; store its outputs again "
        "with: python tests/test_tutorial.py")


if __name__ == "__main__":  # run the notebook and store it with its outputs
    import tempfile

    import nbformat

    with tempfile.TemporaryDirectory() as folder:
        nbformat.write(execute(NOTEBOOK, Path(folder)), NOTEBOOK)
    print(f"{NOTEBOOK}: executed and stored ({NOTEBOOK.stat().st_size:,} bytes)",
          file=sys.stderr)
