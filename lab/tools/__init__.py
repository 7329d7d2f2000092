"""Tools agents call: typed Python functions with a JSON Schema, and the built-in sandbox tools.

``tool`` turns a typed, documented function into a :class:`Tool`; ``shell``, ``python``, ``edit_file`` and
``kernel`` (a persistent IPython kernel) act inside the run's sandbox; ``submit`` / ``submit_json`` hand in the
final answer.
Domain tools live in their own modules (``lab.tools.chemistry``).
"""

from lab.tools.base import Tool, ToolArgumentError, ToolContext, ToolError, parse_docstring, tool
from lab.tools.kernel import kernel
from lab.tools.shell import edit_file, python, shell
from lab.tools.submit import SUBMIT, parse_answer, submit, submit_json

__all__ = [
    "SUBMIT", "Tool", "ToolArgumentError", "ToolContext", "ToolError", "edit_file", "kernel", "parse_answer",
    "parse_docstring", "python", "shell", "submit", "submit_json", "tool",
]
