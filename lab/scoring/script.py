"""Script scorers: a command run inside the task's sandbox decides the score (METR / RE-Bench style)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lab.scoring.base import ScoringError, register_scorer
from lab.scoring.rules import parse_number
from lab.traces.schema import Provenance, Score


@register_scorer("script")
@dataclass
class ScriptScorer:
    """Run ``command`` in the sandbox given as ``sandbox=`` context and read the score it reports.

    ``parse="json"``: the last non-empty line of stdout is JSON — a number, or an object with a
    ``"score"`` key (its other keys are kept in ``details``). ``parse="exit_code"``: 1.0 when the
    command exits 0, else 0.0. A failing command (or unreadable output) gives ``value=None`` with the
    reason and the tail of stderr in ``details``.

    Args:
        command: Shell command (or argv list) to run; the output under test is on stdin when it is text.
        parse: ``"json"`` or ``"exit_code"``.
        timeout: Seconds before the command is killed.
        cwd: Working directory inside the sandbox.
        name: Scorer name recorded with the score.
    """

    command: str | list[str]
    parse: str = "json"
    timeout: float = 600.0
    cwd: str | None = None
    name: str = "script"

    def __post_init__(self) -> None:
        if self.parse not in ("json", "exit_code"):
            raise ScoringError(f"script scorer: parse must be 'json' or 'exit_code', not {self.parse!r}")

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Run the command in ``context["sandbox"]`` (``output`` on stdin when text) and read its score.

        Raises:
            ScoringError: No sandbox given.
        """
        sandbox = context.get("sandbox")
        if sandbox is None:
            raise ScoringError(f"script scorer {self.name!r} needs sandbox=... (the run's sandbox)")
        stdin = output if isinstance(output, (str, bytes)) else None
        res = sandbox.exec(self.command, input=stdin, cwd=self.cwd, timeout=self.timeout)
        item = context.get("item_id")
        base = {"exit_code": res.exit_code, "duration": res.duration}
        if res.timed_out:
            return self._score(None, item, {**base, "reason": f"timed out after {self.timeout}s"})
        if self.parse == "exit_code":
            return self._score(float(res.ok), item, base)
        if not res.ok:
            return self._score(None, item, {**base, "reason": "command failed", "stderr": res.stderr[-2000:]})
        lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
        if not lines:
            return self._score(None, item, {**base, "reason": "no output"})
        try:
            parsed = json.loads(lines[-1])
        except json.JSONDecodeError:
            return self._score(None, item, {**base, "reason": f"last line is not JSON: {lines[-1][:200]!r}"})
        if isinstance(parsed, dict):
            value = parse_number(parsed.get("score"))
            extra = {k: v for k, v in parsed.items() if k != "score"}
            return self._score(value, item, {**base, **extra}
                               if value is not None else {**base, **extra, "reason": "no numeric 'score'"})
        value = parse_number(parsed)
        return self._score(value, item, base if value is not None else {**base, "reason": "not a number"})

    def _score(self, value: float | None, item: str | None, details: dict[str, Any]) -> Score:
        return Score(self.name, value, Provenance.RULE.value, source=self.name, item_id=item, details=details)
