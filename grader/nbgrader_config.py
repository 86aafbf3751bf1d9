"""nbgrader configuration of the arlab course.

`arlab-grade release` copies this file into the course folder (`course/nbgrader_config.py`);
edit that copy to change one course. Plain `nbgrader` commands run in the course folder read
it too. Environment variables (read when a command starts):

  ARLAB_CELL_TIMEOUT   seconds one cell may run before it is interrupted (default 300, sized
                       for CPU PyTorch training cells under ARLAB_BUDGET=smoke)
  ARLAB_BUDGET         compute budget inside the grading kernels (default smoke)
  ARLAB_MEMORY_MB      address-space limit of a grading kernel; `arlab-grade autograde
                       --memory` sets it (default here: none)
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput,
                                    DeduplicateIds, GetGrades, IgnorePattern, LimitOutput,
                                    OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

from arlab.grading.preprocessors import (GuardedExecute, HideHiddenTests, LimitOutputSize,
                                         RefuseReferenceImports, StderrIsNotFailure)

c = get_config()  # noqa: F821 (traitlets provides get_config when it loads this file)

# The kernels inherit this process's environment: homework cells size themselves by budget.
os.environ.setdefault("ARLAB_BUDGET", "smoke")
CELL_TIMEOUT = int(os.environ.get("ARLAB_CELL_TIMEOUT", "300"))

# --- release: what a student sees in an answer cell --------------------------------------
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# --- execution ----------------------------------------------------------------------------
for section in (c.ExecutePreprocessor, c.Execute):
    section.timeout = CELL_TIMEOUT
    section.kernel_name = "python3"
    section.allow_errors = True  # a failing cell fails its own points, never the whole run
    section.interrupt_on_timeout = True
c.Execute.error_on_timeout = {
    "ename": "CellTimeoutError",
    "evalue": f"this cell ran longer than {CELL_TIMEOUT} s and was interrupted",
    "traceback": [f"CellTimeoutError: this cell ran longer than {CELL_TIMEOUT} s and was "
                  "interrupted"],
}
c.GuardedExecute.max_receive_chars = 1_000_000  # per cell, while receiving

# --- outputs: bounded in lines (nbgrader) and in characters (one 20 MB line is one line) ---
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100
c.LimitOutputSize.max_chars = 10_000
c.LimitOutputSize.max_data_chars = 2_000_000

# --- autograde -----------------------------------------------------------------------------
# Deleted or edited test cells come back from the gradebook, points included.
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata,
]
c.Autograde.autograde_preprocessors = [
    GuardedExecute,            # memory-limited kernel, bounded output, survives a dead kernel
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    LimitOutputSize,
    StderrIsNotFailure,        # warnings and progress bars do not fail a test cell
    RefuseReferenceImports,    # 0 for an exercise whose answer imports the reference
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# --- feedback: scores and failure messages, never the hidden tests -------------------------
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
# Outputs are the student's: no scripts or raw HTML in a page the instructor may open too.
c.HTMLExporter.sanitize_html = True
