"""A tool is a typed Python function: its JSON Schema comes from the type hints and the docstring.

```python
@tool
def molar_mass(smiles: str, exact: bool = False) -> float:
    '''Molar mass of a molecule.

    Args:
        smiles: The molecule as SMILES.
        exact: Monoisotopic mass instead of the average one.
    '''
```

``molar_mass.spec`` is the :class:`lab.models.ToolSpec` a model sees; ``molar_mass(args, ctx)`` validates the
arguments (pydantic) and returns the observation text. A parameter annotated :class:`ToolContext` is
injected, never shown to the model. ``where="sandbox"`` runs a self-contained function inside the sandbox
(``python3`` there) instead of in this process.
"""  # noqa: D214 (the example's own docstring has its Args section indented)

from __future__ import annotations

import inspect
import json
import re
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from lab.errors import LabError
from lab.models.base import ToolSpec

if TYPE_CHECKING:
    from lab.sandbox.base import Sandbox
    from lab.tasks.model import Task
    from lab.traces.recorder import RunRecorder


class ToolError(LabError):
    """A tool could not do what was asked; the message becomes the model's observation."""


class ToolArgumentError(ToolError):
    """The arguments of a tool call do not match the tool's schema."""


@dataclass
class ToolContext:
    """What a tool may touch while it runs.

    Attributes:
        sandbox: The run's sandbox (``None`` for loops without one).
        recorder: The run's :class:`lab.traces.RunRecorder` (``None`` outside a run).
        state: Per-run tool state kept in the checkpointed graph state (e.g. the shell's working
            directory), so a resumed or forked run continues where its tools were.
        timeout: Seconds a sandbox command may run.
        attrs: Extra attributes a tool adds to its ``tool_result`` event (e.g. the kernel tool's structured
            outputs); the loop clears them before each call.
        task: The run's :class:`lab.tasks.Task`, or a function returning it (looked up when first needed);
            ``None`` for runs without one.
    """

    sandbox: Sandbox | None = None
    recorder: RunRecorder | None = None
    state: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = 300.0
    attrs: dict[str, Any] = field(default_factory=dict)
    task: Task | Callable[[], Task | None] | None = None

    def require_task(self, tool: str) -> Task:
        """The run's task, or a :class:`ToolError` naming ``tool`` when the run has none."""
        try:
            task = self.task() if callable(self.task) else self.task
        except LabError as e:
            raise ToolError(f"tool {tool!r} cannot find the run's task: {e}") from None
        if task is None:
            raise ToolError(f"tool {tool!r} needs the run's task and this run has none")
        return task

    def require_sandbox(self, tool: str) -> Sandbox:
        """The sandbox, or a :class:`ToolError` naming ``tool`` when the run has none."""
        if self.sandbox is None:
            raise ToolError(f"tool {tool!r} needs a sandbox and this run has none")
        return self.sandbox


@dataclass
class Tool:
    """A callable tool with its schema.

    Attributes:
        name: Name the model calls it by.
        description: What it does (the docstring's summary).
        parameters: JSON Schema of the arguments.
        fn: The Python function.
        where: ``"process"`` (run here) or ``"sandbox"`` (run with ``python3`` inside the sandbox).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    where: Literal["process", "sandbox"] = "process"
    _model: type[pydantic.BaseModel] | None = field(default=None, repr=False)
    _ctx_param: str | None = field(default=None, repr=False)

    @property
    def spec(self) -> ToolSpec:
        """The :class:`ToolSpec` offered to models."""
        return ToolSpec(self.name, self.description, self.parameters)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check and coerce ``arguments`` against the schema.

        Raises:
            ToolArgumentError: Missing, unknown or mistyped arguments (the message lists them).
        """
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}: arguments must be a JSON object, got {type(arguments).__name__}")
        assert self._model is not None
        try:
            obj = self._model.model_validate(arguments)
        except pydantic.ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'arguments'}: {err['msg']}"
                                 for err in e.errors())
            raise ToolArgumentError(f"{self.name}: invalid arguments ({problems})") from None
        return {k: getattr(obj, k) for k in type(obj).model_fields}

    def __call__(self, arguments: dict[str, Any], ctx: ToolContext | None = None) -> str:
        """Validate ``arguments``, run the tool and return its result as observation text.

        Raises:
            ToolArgumentError: Bad arguments.
            ToolError: The tool failed in a way it reports (other exceptions propagate).
        """
        ctx = ctx or ToolContext()
        args = self.validate(arguments)
        if self.where == "sandbox":
            result = _run_in_sandbox(self, args, ctx)
        else:
            if self._ctx_param:
                args[self._ctx_param] = ctx
            result = self.fn(**args)
        return result if isinstance(result, str) else json.dumps(result, default=str)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         where: Literal["process", "sandbox"] = "process") -> Any:
    """Make a :class:`Tool` from a typed function (usable as ``@tool`` or ``@tool(name=..)``).

    Args:
        fn: The function; every parameter needs a type hint, documented under ``Args:``.
        name: Tool name (default: the function's name).
        where: ``"sandbox"`` runs the function inside the sandbox; it must then be self-contained
            (imports inside its body) and take and return JSON values.

    Returns:
        The tool (or a decorator making one).

    Raises:
        ToolError: A parameter lacks a type hint, or a sandbox tool asks for a :class:`ToolContext`.
    """
    if fn is None:
        return lambda f: tool(f, name=name, where=where)
    return _make_tool(fn, name or fn.__name__, where)


def _make_tool(fn: Callable[..., Any], name: str, where: Literal["process", "sandbox"]) -> Tool:
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    ctx_param = None
    for pname, p in inspect.signature(fn).parameters.items():
        hint = hints.get(pname)
        if hint is ToolContext:
            if where == "sandbox":
                raise ToolError(f"tool {name!r} runs in the sandbox and cannot take a ToolContext")
            ctx_param = pname
            continue
        if hint is None:
            raise ToolError(f"tool {name!r}: parameter {pname!r} needs a type hint")
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[pname] = (hint, pydantic.Field(default, description=arg_docs.get(pname)))
    model = pydantic.create_model(f"{name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    return Tool(name, summary or name, _clean_schema(model.model_json_schema()), fn, where, model, ctx_param)


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and its ``Args:`` descriptions."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section = "summary"
    current = None
    for line in doc.splitlines():
        stripped = line.strip()
        if re.fullmatch(r"[A-Z][A-Za-z ]*:", stripped):
            section = "args" if stripped in ("Args:", "Arguments:", "Parameters:") else "other"
            continue
        if section == "summary":
            if stripped or summary_lines:
                summary_lines.append(stripped)
        elif section == "args" and stripped:
            m = re.match(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", stripped)
            if m and not line.startswith(" " * 8):
                current = m.group(1)
                args[current] = m.group(2)
            elif current:
                args[current] = f"{args[current]} {stripped}".strip()
    return " ".join(" ".join(summary_lines).split()), args


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's ``title`` keys (noise for a model) and keep ``additionalProperties: false``."""
    def walk(node: Any, in_props: bool = False) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k == "properties") for k, v in node.items() if in_props or k != "title"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


_RESULT_MARK = "__LAB_TOOL_RESULT__"


def _run_in_sandbox(t: Tool, args: dict[str, Any], ctx: ToolContext) -> Any:
    sandbox = ctx.require_sandbox(t.name)
    source = textwrap.dedent(inspect.getsource(t.fn))
    source = re.sub(r"^(@.*\n)+", "", source)  # the decorators do not exist in the sandbox
    script = (
        f"import json, sys\n{source}\n"
        f"_r = {t.fn.__name__}(**json.loads(sys.stdin.read()))\n"
        f"print({_RESULT_MARK!r} + json.dumps(_r, default=str))\n"
    )
    res = sandbox.exec(["python3", "-c", script], input=json.dumps(args, default=str), timeout=ctx.timeout)
    if res.timed_out:
        raise ToolError(f"{t.name}: timed out after {ctx.timeout} s in the sandbox")
    if res.exit_code != 0:
        last = (res.stderr.strip().splitlines() or [f"exit code {res.exit_code}"])[-1]
        raise ToolError(f"{t.name} failed in the sandbox: {last}")
    for line in reversed(res.stdout.splitlines()):
        if line.startswith(_RESULT_MARK):
            return json.loads(line[len(_RESULT_MARK):])
    raise ToolError(f"{t.name}: the sandbox run printed no result")
