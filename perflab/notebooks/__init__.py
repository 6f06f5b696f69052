"""Notebooks run headless: typed parameters (``parameters``), the kernel (``kernel``), the run
with papermill (``run``) and the one-file HTML export (``export``)."""

from perflab.notebooks.export import export_html, mark_interrupted
from perflab.notebooks.kernel import KERNEL_NAME, ensure_kernelspec, kernel_environ
from perflab.notebooks.parameters import Parameter, coerce_parameters, read_parameters
from perflab.notebooks.run import (
    NotebookRun,
    RunInterrupted,
    output_folder,
    read_notebook,
    run_notebook,
)

__all__ = [
    "KERNEL_NAME",
    "NotebookRun",
    "Parameter",
    "RunInterrupted",
    "coerce_parameters",
    "ensure_kernelspec",
    "export_html",
    "kernel_environ",
    "mark_interrupted",
    "output_folder",
    "read_notebook",
    "read_parameters",
    "run_notebook",
]
