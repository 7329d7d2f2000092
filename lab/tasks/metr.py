"""METR Task Standard task families: load them as tasks, and drive them inside a sandbox.

A family is a directory ``<family>/`` holding ``<family>.py`` that defines ``TaskFamily`` with
``get_tasks``, ``get_instructions`` and either ``score`` or ``intermediate_score`` + ``aggregate_scores``
(plus optional ``install``, ``start``, ``get_permissions``, ``teardown``), and optionally ``manifest.yaml``
(validated against the standard's JSON schema, shipped in ``lab/tasks/schemas``).

Loading imports the family module on the host to list its tasks and instructions (as the standard's own
workbench does), so a family's top-level imports must be available here. Everything else (install, start,
scoring) runs inside the sandbox through ``metr_driver.py``: as root, with the family in
:data:`FAMILY_ROOT` where the solver (the non-root user) cannot read it, as the standard prescribes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lab.tasks.errors import TaskScoringError, TaskSpecError
from lab.tasks.model import Limits, MetrRef, Resources, Scoring, ScriptScoring, Task, TaskSandbox

if TYPE_CHECKING:
    from lab.sandbox import Sandbox

__all__ = ["FAMILY_ROOT", "MetrSession", "load_metr_family", "manifest_schema"]

FAMILY_ROOT = "/root/task-family"
DRIVER_PATH = "/root/lab_metr_driver.py"
AGENT_HOME = "/home/agent"
_DRIVER_SRC = Path(__file__).with_name("metr_driver.py")
_SCHEMA = Path(__file__).parent / "schemas" / "metr-task-family-manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The METR task-family manifest JSON schema (MIT, METR; see ``schemas/LICENSE-METR.txt``)."""
    return json.loads(_SCHEMA.read_text())


def _load_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    from lab.tasks.yaml_loader import read_yaml

    data, node = read_yaml(path, what="METR manifest")
    import jsonschema  # imported here: it is slow to import and only manifests need it

    err = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(manifest_schema()).iter_errors(data))
    if err is not None:
        line, n = "", node
        for part in err.absolute_path:  # walk to the offending node for its line
            nxt = None
            if isinstance(n, yaml.MappingNode):
                nxt = next((v for k, v in n.value if k.value == str(part)), None)
            elif isinstance(n, yaml.SequenceNode) and isinstance(part, int) and part < len(n.value):
                nxt = n.value[part]
            if nxt is None:
                break
            n = nxt
        if n is not None:
            line = f":{n.start_mark.line + 1}"
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise TaskSpecError(f"{path}{line}: manifest field '{where}': {err.message}")
    if not isinstance(data, dict):  # the schema requires a mapping: validation has said so already
        raise TaskSpecError(f"{path}: a METR manifest must be a mapping")
    return data


def _import_family(py: Path) -> Any:
    digest = hashlib.sha1(str(py.resolve()).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(f"_lab_metr_{py.stem}_{digest}", py)
    if spec is None or spec.loader is None:
        raise TaskSpecError(f"{py}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(py.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise TaskSpecError(f"{py}: importing the task family failed: {type(e).__name__}: {e}") from e
    finally:
        sys.path.remove(str(py.parent))
    tf = getattr(module, "TaskFamily", None)
    if tf is None:
        raise TaskSpecError(f"{py}: defines no TaskFamily class")
    return tf


def load_metr_family(family_dir: str | Path, *, suite: str | None = None, image: str = "base",
                     budgets: Limits | None = None) -> list[Task]:
    """Load every task of a METR Task Standard family.

    Per-task resources and scoring visibility come from ``manifest.yaml``; its free-form ``meta`` may set
    ``starting_score`` and ``reference_score`` (for normalisation) and ``budgets`` (a :class:`Limits`
    mapping). The family's ``get_permissions`` returning ``full_internet`` turns the network on.

    Args:
        family_dir: The family directory (its name is the family name).
        suite: Suite name for the tasks.
        image: Sandbox image (under ``sandboxes/``) the family runs in; it needs ``python3`` and an
            ``agent`` user as the standard says.
        budgets: Default budgets.

    Returns:
        One ``rd`` task per entry of ``get_tasks()``, id ``<family>/<task>``.

    Raises:
        TaskSpecError: The family file is missing or does not import, ``TaskFamily`` lacks a required
            method, the manifest breaks the schema, or a method raised while listing tasks.
    """
    fdir = Path(family_dir).resolve()
    name = fdir.name
    py = fdir / f"{name}.py"
    if not py.is_file():
        raise TaskSpecError(f"{fdir}: a METR task family needs {name}.py")
    manifest = _load_manifest(fdir / "manifest.yaml")
    tf = _import_family(py)
    for m in ("get_tasks", "get_instructions"):
        if not callable(getattr(tf, m, None)):
            raise TaskSpecError(f"{py}: TaskFamily has no {m}()")
    has_score = callable(getattr(tf, "score", None))
    has_inter = callable(getattr(tf, "intermediate_score", None))
    if not has_score and not (has_inter and callable(getattr(tf, "aggregate_scores", None))):
        raise TaskSpecError(f"{py}: TaskFamily needs score() or intermediate_score() with aggregate_scores()")
    try:
        family_tasks = tf.get_tasks()
    except Exception as e:
        raise TaskSpecError(f"{py}: get_tasks() raised {type(e).__name__}: {e}") from e
    if not isinstance(family_tasks, dict) or not family_tasks:
        raise TaskSpecError(f"{py}: get_tasks() must return a non-empty dict of tasks")
    out: list[Task] = []
    for tname, t in family_tasks.items():
        tid = f"{name}/{tname}"
        try:
            instructions = tf.get_instructions(t)
            perms = tf.get_permissions(t) if callable(getattr(tf, "get_permissions", None)) else []
        except Exception as e:
            raise TaskSpecError(f"{py}: task '{tid}': {type(e).__name__}: {e}") from e
        if not isinstance(instructions, str) or not instructions.strip():
            raise TaskSpecError(f"{py}: task '{tid}': get_instructions() returned no text")
        entry = (manifest.get("tasks") or {}).get(tname, {})
        res, meta, sc = entry.get("resources", {}), entry.get("meta") or {}, entry.get("scoring", {})
        gpu = res.get("gpu")
        try:
            resources = Resources(cpus=res.get("cpus", 1.0), memory_gb=res.get("memory_gb", 2.0),
                                  gpus=int(gpu["count_range"][0]) if gpu else 0,
                                  network="full_internet" in perms, storage_gb=res.get("storage_gb"))
            task = Task(
                id=tid, suite=suite, kind="rd", instructions=instructions,
                sandbox=TaskSandbox(image=meta.get("image", image), workdir="/home/agent", user="agent"),
                resources=resources,
                budgets=Limits(**meta["budgets"]) if "budgets" in meta else (budgets or Limits()),
                scoring=Scoring(
                    script=ScriptScoring(command=f"python3 {DRIVER_PATH} {FAMILY_ROOT}/{name} {tname} score",
                                         timeout_s=float(meta.get("score_timeout_s", 600))),
                    intermediate=has_inter, visible_to_agent=sc.get("visible_to_agent", True),
                    starting_score=meta.get("starting_score"), reference_score=meta.get("reference_score")),
                metr=MetrRef(family_dir=str(fdir), family=name, task=tname,
                             standard_version=getattr(tf, "standard_version", None)),
                metadata={"gpu_model": gpu["model"]} if gpu else {},
                source=str(py),
            )
        except (ValueError, TypeError) as e:  # pydantic's ValidationError is a ValueError
            raise TaskSpecError(f"{fdir / 'manifest.yaml'}: task '{tid}': {e}") from None
        out.append(task)
    return out


@dataclass
class IntermediateScore:
    """One entry of a METR score log.

    Attributes:
        score: The score (``None`` when the attempt could not be scored, e.g. the solution crashed).
        message: What the solver is shown.
        details: What only the scorer sees.
        elapsed: Seconds since the session started.
    """

    score: float | None
    message: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0


class MetrSession:
    """A METR task family driven inside an open sandbox: install, start, score, intermediate scores.

    The family directory is copied to :data:`FAMILY_ROOT` and operations run as root; the solver works as
    the ``agent`` user in ``/home/agent``.

    Args:
        task: A task loaded by :func:`load_metr_family`.
        sandbox: An open sandbox on the task's image.
    """

    def __init__(self, task: Task, sandbox: Sandbox) -> None:
        if task.metr is None or task.scoring.script is None:
            raise TaskSpecError(f"task '{task.key}' is not a METR task family task")
        self.task, self.sandbox = task, sandbox
        self._ref: MetrRef = task.metr
        self._timeout_s = task.scoring.script.timeout_s
        self.score_log: list[dict[str, Any]] = []
        self._t0: float | None = None

    def _op(self, op: str, stdin: str | None = None, timeout: float | None = None) -> Any:
        ref = self._ref
        cmd = ["python3", DRIVER_PATH, f"{FAMILY_ROOT}/{ref.family}", ref.task, op]
        res = self.sandbox.exec(cmd, input=stdin, user="root", cwd="/root", timeout=timeout or self._timeout_s)
        if res.timed_out:
            raise TaskScoringError(f"task '{self.task.key}': {op}() timed out after "
                                   f"{timeout or self._timeout_s:g}s")
        lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
        try:
            reply = json.loads(lines[-1])
            assert isinstance(reply, dict) and "ok" in reply
        except (IndexError, ValueError, AssertionError):
            raise TaskScoringError(f"task '{self.task.key}': {op}() produced no result (exit {res.exit_code}): "
                                   f"{(res.stderr or res.stdout)[-500:].strip()}") from None
        if not reply["ok"]:
            raise TaskScoringError(f"task '{self.task.key}': {op}() raised {reply['error']}")
        return reply["result"]

    def setup(self) -> None:
        """Copy the family and the driver into :data:`FAMILY_ROOT` (root-only), run ``install`` and ``start``.

        Raises:
            TaskScoringError: ``install`` or ``start`` raised or timed out, or the copy failed.
        """
        import time

        ref, stage = self._ref, "/tmp/lab-task-family"
        self.sandbox.copy_in(_staged(Path(ref.family_dir)), f"{stage}/{ref.family}")
        self.sandbox.write_file(f"{stage}/driver.py", _DRIVER_SRC.read_bytes())
        res = self.sandbox.exec(
            f"set -e; mkdir -p {FAMILY_ROOT}; cp -r {stage}/{ref.family} {FAMILY_ROOT}/; "
            f"cp {stage}/driver.py {DRIVER_PATH}; chmod -R go-rwx /root", user="root", timeout=120)
        self.sandbox.exec(["rm", "-rf", stage], timeout=60)
        if not res.ok:
            raise TaskScoringError(f"task '{self.task.key}': copying the task family to {FAMILY_ROOT} failed "
                                   f"(the sandbox needs a writable root filesystem): {res.stderr[-300:]}")
        self._op("install", timeout=1800)
        # root has no capabilities in a hardened sandbox (no CAP_DAC_OVERRIDE): open the agent's home to it
        # while start() fills it, then close it again (the driver hands what start() made to the agent)
        self.sandbox.exec(["chmod", "0777", AGENT_HOME], timeout=60)
        try:
            self._op("start", timeout=600)
        finally:
            self.sandbox.exec(["chmod", "0755", AGENT_HOME], timeout=60)
        self._t0 = time.monotonic()

    def intermediate_score(self) -> IntermediateScore:
        """Score the solver's current state and append it to the score log.

        Raises:
            TaskScoringError: The family has no intermediate scoring, or it raised or timed out.
        """
        import time

        if not self.task.scoring.intermediate:
            raise TaskScoringError(f"task '{self.task.key}' has no intermediate scoring")
        r = self._op("intermediate_score")
        if isinstance(r, dict):
            entry = IntermediateScore(_num(r.get("score")), r.get("message") or {}, r.get("details") or {})
        else:
            entry = IntermediateScore(_num(r))
        entry.elapsed = time.monotonic() - (self._t0 or time.monotonic())
        self.score_log.append({"score": entry.score, "message": entry.message, "details": entry.details,
                               "elapsed_seconds": entry.elapsed})
        return entry

    def score(self, submission: str = "") -> float:
        """The final score: ``score(submission)``, or ``aggregate_scores`` over the score log.

        Raises:
            TaskScoringError: Scoring raised, timed out, or returned nothing (``None`` or not a number).
        """
        if self.task.scoring.intermediate:
            if not self.score_log:
                self.intermediate_score()
            r = self._op("aggregate_scores", stdin=json.dumps(self.score_log))
        else:
            r = self._op("score", stdin=submission)
        value = _num(r)
        if value is None:
            raise TaskScoringError(f"task '{self.task.key}': scoring returned {r!r}, not a number")
        return value


def _staged(family_dir: Path) -> Path:
    """The family directory without caches (``__pycache__``), ready to copy in."""
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="lab-metr-"))
    shutil.copytree(family_dir, tmp / family_dir.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp / family_dir.name


def _num(x: Any) -> float | None:
    import math

    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return None
    return float(x)
