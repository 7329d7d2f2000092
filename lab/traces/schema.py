"""The one event schema every part of the lab records into.

Attribute keys follow the OpenTelemetry GenAI semantic conventions where one exists
(``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` ...) so a trace exports over OTLP unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple


class EventKind(str, enum.Enum):
    """What an event records."""

    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"
    AGENT_MESSAGE = "agent_message"
    MODEL_CALL = "model_call"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    SANDBOX_EXEC = "sandbox_exec"
    SANDBOX_FILE = "sandbox_file"
    HUMAN_ACTION = "human_action"
    SCORE = "score"
    LIMIT = "limit"
    ERROR = "error"
    SPAN = "span"
    PROVENANCE = "provenance"


class RunStatus(str, enum.Enum):
    """Lifecycle of a run. ``running`` is the only non-final state."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class Provenance(str, enum.Enum):
    """Who gave a score."""

    RULE = "rule"
    MODEL = "model"
    HUMAN = "human"


# Attribute names (OpenTelemetry GenAI conventions where they exist). Writers record them through the
# builders below; readers look them up by these names.

# -- model calls (``gen_ai.*``) --
OPERATION = "gen_ai.operation.name"
SYSTEM = "gen_ai.system"
MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
TEMPERATURE = "gen_ai.request.temperature"
TOP_P = "gen_ai.request.top_p"
MAX_TOKENS = "gen_ai.request.max_tokens"
SEED = "gen_ai.request.seed"
STOP = "gen_ai.request.stop_sequences"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
SERVER = "server.address"
RESPONSE_SCHEMA = "lab.request.response_schema"
BOUNDED_SCHEMA = "lab.request.bounded_schema"
"""The schema a local model's reply was actually constrained to (string and array bounds for the budget)."""
TOOL_CHOICE = "lab.request.tool_choice"
PARSED = "lab.response.parsed"
ATTEMPT = "lab.attempt"
RETRYABLE = "lab.retryable"
FALLBACK = "lab.fallback"
FALLBACK_REASON = "lab.fallback.reason"
FALLBACK_ATTEMPTS = "lab.fallback.attempts"
FALLBACK_INVALID = "lab.fallback.invalid"
INSPECT_MODEL_ROLE = "lab.inspect.model_role"
COST = "lab.cost_usd"  # cost of a step in US dollars, where a backend records it (in a model call's extras)

# -- tools --
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
ARGUMENTS = "lab.arguments"
KERNEL_OUTPUTS = "lab.kernel.outputs"
THOUGHT = "lab.thought"  # an imported SUPER step's thought, action (a notebook cell) and observation
ACTION = "lab.action"  # also what a human (or an agent's control flow) did
OBSERVATION = "lab.observation"
PRE_EXECUTED = "lab.pre_executed"

# -- shared --
AGENT_NAME = "gen_ai.agent.name"
CONTENT = "content"  # text said or returned (a message, a tool's result, a terminal's output)
CONFIG = "config"
STEP = "lab.step"
REASON = "lab.reason"
DURATION = "lab.duration_s"  # seconds an event's work took (a step, an exec); OTLP span length
LATENCY = "lab.latency_s"  # seconds a model call took (also read as an OTLP span length)
ERROR_TYPE = "error.type"
ERROR_MESSAGE = "error.message"
ERROR_TRACEBACK = "error.traceback"
ERROR_WHERE = "error.where"
FILE_PATH = "file.path"
FILE_SIZE = "file.size"

# -- runs --
STATUS = "lab.status"
STOP_REASON = "lab.stop_reason"
ANSWER = "lab.answer"
STEPS = "lab.steps"
TOKENS = "lab.tokens"
PROVENANCE = "lab.provenance"
SUPER_PREFIX = "lab.super."  # an imported SUPER notebook's sections (``lab.super.query`` ...)
SUPER_QUERY = "lab.super.query"
INSPECT_MODEL_USAGE = "lab.inspect.model_usage"

# -- agent messages and human actions --
PENDING = "lab.pending"
DECISION = "lab.decision"
FORK_PARENT_RUN_ID = "lab.fork.parent_run_id"
FORK_STEP = "lab.fork.step"
INVALID_REPLY = "lab.invalid_reply"
INVALID_COUNT = "lab.invalid_count"
FINAL = "lab.final"
ROUND = "lab.round"
INSPECT_SOURCE = "lab.inspect.source"
TERMINAL_ID = "lab.terminal.id"
TERMINAL_LINE = "lab.terminal.line"
RESUMED_AT = "lab.resumed_at_s"
AUDIT = "lab.audit"
BY = "lab.by"
PARENT = "lab.parent"
BATCH = "lab.batch"

# -- sandbox --
SANDBOX_ID = "lab.sandbox.id"
SANDBOX_BACKEND = "lab.sandbox.backend"
SANDBOX_OP = "lab.sandbox.op"
COMMAND_ARGS = "process.command_args"
EXIT_CODE = "process.exit.code"
SANDBOX_CWD = "lab.sandbox.cwd"
SANDBOX_USER = "lab.sandbox.user"
SANDBOX_ENV_KEYS = "lab.sandbox.env_keys"
SANDBOX_TIMEOUT = "lab.sandbox.timeout"
SANDBOX_DURATION = "lab.sandbox.duration"
TIMED_OUT = "lab.sandbox.timed_out"
TRUNCATED = "lab.sandbox.truncated"
STDOUT = "lab.sandbox.stdout"
STDOUT_TRUNCATED = "lab.sandbox.stdout_truncated"
STDERR = "lab.sandbox.stderr"
STDERR_TRUNCATED = "lab.sandbox.stderr_truncated"
SANDBOX_OUTPUT = "lab.sandbox.output"  # what an imported sandbox file operation returned
LOCAL_PATH = "lab.sandbox.local_path"
SANDBOX_SNAPSHOT = "lab.sandbox.snapshot"
SNAPSHOT_REF = "lab.snapshot.ref"
SNAPSHOT_ARCHIVE = "lab.snapshot.archive"

# -- scores (``gen_ai.evaluation.*``) --
EVAL_NAME = "gen_ai.evaluation.name"
EVAL_SCORE = "gen_ai.evaluation.score.value"
EVAL_LABEL = "gen_ai.evaluation.score.label"
EVAL_EXPLANATION = "gen_ai.evaluation.explanation"
SCORE_PROVENANCE = "lab.score.provenance"
SCORE_SOURCE = "lab.score.source"
SCORE_ITEM_ID = "lab.score.item_id"
SCORE_DIMENSION = "lab.score.dimension"
SCORE_FINAL = "lab.score.final"
SCORE_DETAILS = "lab.score.details"

# -- limits and spans --
LIMIT_NAME = "lab.limit.name"
LIMIT_TYPE = "lab.limit"
LIMIT_VALUE = "lab.limit.value"
LIMIT_USED = "lab.limit.used"
SPAN_NAME = "lab.span.name"
INSPECT_SPAN_TYPE = "lab.inspect.span_type"

# -- OTLP export (span and resource attributes of a run, not event attributes) --
RUN_ID = "lab.run_id"
TASK = "lab.task"
IS_HUMAN = "lab.is_human"
ELAPSED = "lab.elapsed_s"
RUN_SEED = "lab.seed"
BATCH_ID = "lab.batch_id"
RUN_CONFIG = "lab.config"
SEQ = "lab.seq"
KIND = "lab.kind"


@dataclass(slots=True)
class Event:
    """One append-only record of something a run did.

    Attributes:
        run_id: The run this event belongs to.
        kind: What happened (an :class:`EventKind` value).
        attrs: Free-form attributes; OpenTelemetry GenAI names where they apply.
        seq: Position in the run, assigned by the store (0-based, gap-free).
        ts: Wall-clock time (Unix seconds).
        elapsed: Pause-free working time since the run started (seconds).
        span_id: Identifier of the span this event opens or belongs to.
        parent_id: The parent span, so multi-agent dialogs render as a tree.
        agent: Agent or role name (``decider``, ``researcher``, ``human:alice`` ...).
    """

    run_id: str
    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)
    seq: int = -1
    ts: float = 0.0
    elapsed: float = 0.0
    span_id: str | None = None
    parent_id: str | None = None
    agent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain JSON-able dict."""
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "ts": self.ts,
            "elapsed": self.elapsed,
            "kind": self.kind,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "agent": self.agent,
            "attrs": self.attrs,
        }


@dataclass(slots=True)
class Score:
    """A score with its provenance: who or what gave it.

    Attributes:
        scorer: Name of the scorer (``output_match``, ``judge:smollm2``, ``expert``).
        value: The numeric value (``None`` when the scorer could not score).
        provenance: ``rule``, ``model`` or ``human``.
        source: Who exactly: a model name, a grader id, a rule name.
        item_id: The item graded (defaults to the run's task).
        dimension: Rubric dimension (``overall`` when there is one).
        label: Optional categorical verdict (``A``, ``B``, ``tie``, ``pass``).
        final: Whether this is the run's final score (vs an intermediate one).
        details: Anything else worth keeping (prompt, confidence, explanation).
    """

    scorer: str
    value: float | None
    provenance: str = Provenance.RULE.value
    source: str | None = None
    item_id: str | None = None
    dimension: str = "overall"
    label: str | None = None
    final: bool = True
    details: dict[str, Any] = field(default_factory=dict)


FINAL_STATUSES = frozenset(s.value for s in RunStatus if s is not RunStatus.RUNNING)


# -- one builder per event kind ---------------------------------------------------------------------------


class EventData(NamedTuple):
    """What a writer records: an event's kind and attributes, as a builder below makes them.

    Unpacks into :meth:`lab.traces.recorder.RunRecorder.emit` and :class:`Event`:
    ``recorder.emit(*tool_call(tool_name="shell"), agent=...)``, ``Event(run_id, *run_started(config={}))``.
    """

    kind: str
    attrs: dict[str, Any]


class Absent(enum.Enum):
    """The type of :data:`ABSENT` (a parameter not given)."""

    ABSENT = "absent"


ABSENT: Final = Absent.ABSENT
"""Default of a builder parameter whose ``None`` is recorded (as null): the key is left out only when the
parameter is not given. Every other optional parameter defaults to ``None``, left out."""


_NULL = object()  # an explicitly given ``None``, recorded as null


def _given(value: Any) -> Any:
    """``value`` for a parameter whose ``None`` is recorded (``ABSENT`` still leaves the key out)."""
    return _NULL if value is None else value


def _event(kind: EventKind, pairs: Iterable[tuple[str, Any]], extra: Mapping[str, Any] | None = None) -> EventData:
    """The event of ``kind`` with the ``pairs`` that were given (``None`` and ``ABSENT`` are left out)."""
    attrs = {k: None if v is _NULL else v for k, v in pairs if v is not None and v is not ABSENT}
    if extra:
        attrs.update(extra)
    return EventData(kind.value, attrs)


def run_started(*, config: Mapping[str, Any], provenance: Mapping[str, Any] | None = None,
                super_sections: Mapping[str, Any] | None = None) -> EventData:
    """A run began.

    Args:
        config: The run's configuration (task, agent, model, loop ...).
        provenance: What a reviewer needs to reproduce the run (:mod:`lab.provenance`).
        super_sections: An imported SUPER notebook's sections, each recorded as ``lab.super.<name>``.
    """
    sections = [(SUPER_PREFIX + k, _given(v)) for k, v in (super_sections or {}).items()]
    return _event(EventKind.RUN_STARTED, [(CONFIG, config), (PROVENANCE, provenance), *sections])


def run_finished(status: str, *, error: str | None = None, stop_reason: str | None | Absent = ABSENT,
                 answer: Any = ABSENT, steps: int | None | Absent = ABSENT, tokens: int | None | Absent = ABSENT,
                 inspect_model_usage: Mapping[str, Any] | None = None,
                 extra: Mapping[str, Any] | None = None) -> EventData:
    """A run ended.

    Args:
        status: The final :class:`RunStatus` value.
        error: What failed (``error.message``).
        stop_reason: Why the loop stopped (``submitted``, ``max_steps``, ``limit:time`` ...).
        answer: The submitted answer.
        steps: Steps the loop took.
        tokens: Tokens the loop spent.
        inspect_model_usage: Token usage per model of an imported Inspect sample.
        extra: Further attributes, recorded as given (they override the ones above).
    """
    return _event(EventKind.RUN_FINISHED, [
        (STATUS, status), (ERROR_MESSAGE, error), (STOP_REASON, _given(stop_reason)), (ANSWER, _given(answer)),
        (STEPS, _given(steps)), (TOKENS, _given(tokens)), (INSPECT_MODEL_USAGE, inspect_model_usage),
    ], extra)


def agent_message(*, action: str | None = None, pending: list[Any] | None = None, decision: Any = None,
                  fork_parent_run_id: str | None = None, fork_step: int | None = None,
                  invalid_reply: str | None = None, invalid_count: int | None = None, content: str | None = None,
                  answer: Any = ABSENT, final: Any = ABSENT, round_number: int | None = None,
                  inspect_source: str | None = None) -> EventData:
    """An agent said something, or its control flow did something (wait for approval, resume, fork).

    Args:
        action: What the run did (``awaiting_approval``, ``resume``, ``approval``, ``fork``).
        pending: The tool calls waiting for approval.
        decision: A reviewer's decision on them.
        fork_parent_run_id: The run a fork continues.
        fork_step: The step it forked at.
        invalid_reply: Why the agent's reply was not valid.
        invalid_count: Invalid replies in a row so far.
        content: What the agent said.
        answer: The answer a dialog role gave.
        final: Whether the role called its answer final.
        round_number: The dialog round.
        inspect_source: An imported Inspect ``info`` event's source.
    """
    return _event(EventKind.AGENT_MESSAGE, [
        (ACTION, action), (PENDING, pending), (DECISION, decision), (FORK_PARENT_RUN_ID, fork_parent_run_id),
        (FORK_STEP, fork_step), (INVALID_REPLY, invalid_reply), (INVALID_COUNT, invalid_count), (CONTENT, content),
        (ANSWER, _given(answer)), (FINAL, _given(final)), (ROUND, round_number), (INSPECT_SOURCE, inspect_source),
    ])


def model_call(*, system: str, model: str | None, input_messages: list[dict[str, Any]], operation: str = "chat",
               tool_definitions: list[dict[str, Any]] | None = None, response_schema: Any = None,
               inspect_model_role: str | None = None, temperature: float | None = None, top_p: float | None = None,
               max_tokens: int | None = None, seed: int | None = None, stop_sequences: list[str] | None = None,
               tool_choice: Any = None, server: str | None = None, attempt: int | None = None,
               output_messages: list[dict[str, Any]] | None = None, response_model: str | None = None,
               finish_reasons: list[Any] | None = None, input_tokens: int | None = None,
               output_tokens: int | None = None, parsed: Any = None, error_type: str | None = None,
               error_message: str | None = None, retryable: bool | None = None, latency: float | None = None,
               extra: Mapping[str, Any] | None = None) -> EventData:
    """A model call: its request, and its response or failure (OpenTelemetry GenAI names).

    Args:
        system: Backend family (``transformers``, ``openai``, ``scripted``, ``inspect``).
        model: The requested model.
        input_messages: Request messages as dicts (``role``, ``content``, ``tool_calls`` ...).
        operation: The GenAI operation.
        tool_definitions: Tools offered, as OpenAI function definitions.
        response_schema: The JSON Schema the reply was asked to follow.
        inspect_model_role: An imported Inspect model event's role.
        temperature: Sampling temperature.
        top_p: Nucleus sampling mass.
        max_tokens: Token cap of the reply.
        seed: Sampling seed.
        stop_sequences: Stop sequences.
        tool_choice: ``auto``, ``required``, ``none`` or a tool name.
        server: Server address of an HTTP backend (never with credentials).
        attempt: 1-based attempt number when retried.
        output_messages: The reply as message dicts.
        response_model: The model that answered.
        finish_reasons: Why generation stopped (``["error"]`` for a failed call).
        input_tokens: Prompt tokens.
        output_tokens: Reply tokens.
        parsed: The reply parsed against ``response_schema``.
        error_type: The failure's exception type.
        error_message: The failure's message.
        retryable: Whether the failure may pass on retry.
        latency: Seconds the call took.
        extra: A backend's further attributes (``lab.request.bounded_schema``, ``lab.fallback.*`` ...).
    """
    return _event(EventKind.MODEL_CALL, [
        (OPERATION, operation), (SYSTEM, system), (MODEL, model), (INPUT_MESSAGES, input_messages),
        (TOOL_DEFINITIONS, tool_definitions), (RESPONSE_SCHEMA, response_schema),
        (INSPECT_MODEL_ROLE, inspect_model_role), (TEMPERATURE, temperature), (TOP_P, top_p),
        (MAX_TOKENS, max_tokens), (SEED, seed), (STOP, stop_sequences), (TOOL_CHOICE, tool_choice),
        (SERVER, server), (ATTEMPT, attempt), (OUTPUT_MESSAGES, output_messages), (RESPONSE_MODEL, response_model),
        (FINISH_REASONS, finish_reasons), (INPUT_TOKENS, input_tokens), (OUTPUT_TOKENS, output_tokens),
        (PARSED, parsed), (ERROR_TYPE, error_type), (ERROR_MESSAGE, error_message), (RETRYABLE, retryable),
        (LATENCY, latency),
    ], extra)


def tool_call(*, tool_name: str, tool_call_id: str | None = None, arguments: Any = None, step: int | None = None,
              thought: str | None = None, action: str | None = None, observation: str | None = None,
              pre_executed: bool | None = None, duration: float | None = None) -> EventData:
    """An agent (or a human at a shell) called a tool.

    Args:
        tool_name: The tool.
        tool_call_id: The call's id (its result carries the same).
        arguments: The call's arguments.
        step: An imported SUPER step's number.
        thought: The SUPER step's thought.
        action: The SUPER step's action (a notebook cell).
        observation: What the SUPER step's action printed.
        pre_executed: Whether the task ran the SUPER step before the agent started.
        duration: Seconds the SUPER step took.
    """
    return _event(EventKind.TOOL_CALL, [
        (STEP, step), (TOOL_NAME, tool_name), (TOOL_CALL_ID, tool_call_id), (ARGUMENTS, arguments),
        (THOUGHT, thought), (ACTION, action), (OBSERVATION, observation), (PRE_EXECUTED, pre_executed),
        (DURATION, duration),
    ])


def tool_result(*, tool_name: str, content: str, tool_call_id: str | None = None, duration: float | None = None,
                error_type: str | None = None, error_message: str | None = None,
                extra: Mapping[str, Any] | None = None) -> EventData:
    """What a tool call returned.

    Args:
        tool_name: The tool.
        content: The result the agent saw.
        tool_call_id: The call's id.
        duration: Seconds the tool took.
        error_type: The failure's type when the tool failed (``Rejected`` for a reviewer's rejection).
        error_message: The failure's message.
        extra: What the tool recorded besides (``lab.kernel.outputs`` ...).
    """
    return _event(EventKind.TOOL_RESULT, [
        (TOOL_NAME, tool_name), (TOOL_CALL_ID, tool_call_id), (CONTENT, content), (DURATION, duration),
        (ERROR_TYPE, error_type), (ERROR_MESSAGE, error_message),
    ], extra)


def sandbox_exec(*, sandbox_id: str | None = None, backend: str | None = None, op: str | None = None,
                 command_args: list[str] | None = None, cwd: str | None = None, user: str | None | Absent = ABSENT,
                 env_keys: list[str] | None = None, timeout: float | None | Absent = ABSENT,
                 exit_code: int | None = None, sandbox_duration: float | None = None, timed_out: bool | None = None,
                 truncated: bool | None = None, stdout: str | None = None, stdout_truncated: bool | None = None,
                 stderr: str | None = None, stderr_truncated: bool | None = None, snapshot_ref: str | None = None,
                 snapshot_archive: str | None = None, duration: float | None = None, error_type: str | None = None,
                 error_message: str | None = None) -> EventData:
    """A command ran in a sandbox (or a sandbox-wide operation: a snapshot of the workdir).

    Args:
        sandbox_id: The sandbox.
        backend: Its backend (``docker``, ``local`` ...).
        op: The operation when not a command (``snapshot``).
        command_args: The command's argv.
        cwd: Its working directory.
        user: The user it ran as (``None``: the sandbox's).
        env_keys: Names of the environment variables it was given (never their values).
        timeout: Its timeout in seconds.
        exit_code: Its exit code (-1 when killed).
        sandbox_duration: Seconds it ran.
        timed_out: Whether it was killed at its timeout.
        truncated: Whether its output hit the cap.
        stdout: What it printed (clipped).
        stdout_truncated: Whether ``stdout`` was clipped for the trace.
        stderr: Its error output (clipped).
        stderr_truncated: Whether ``stderr`` was clipped for the trace.
        snapshot_ref: The backend's snapshot reference.
        snapshot_archive: The digest of the workdir archive in the snapshot store.
        duration: Seconds the operation took.
        error_type: Why the command could not run: exception type.
        error_message: And message.
    """
    return _event(EventKind.SANDBOX_EXEC, [
        (SANDBOX_ID, sandbox_id), (SANDBOX_BACKEND, backend), (SANDBOX_OP, op), (COMMAND_ARGS, command_args),
        (SANDBOX_CWD, cwd), (SANDBOX_USER, _given(user)), (SANDBOX_ENV_KEYS, env_keys),
        (SANDBOX_TIMEOUT, _given(timeout)), (EXIT_CODE, exit_code), (SANDBOX_DURATION, sandbox_duration),
        (TIMED_OUT, timed_out), (TRUNCATED, truncated), (STDOUT, stdout), (STDOUT_TRUNCATED, stdout_truncated),
        (STDERR, stderr), (STDERR_TRUNCATED, stderr_truncated), (SNAPSHOT_REF, snapshot_ref),
        (SNAPSHOT_ARCHIVE, snapshot_archive), (DURATION, duration), (ERROR_TYPE, error_type),
        (ERROR_MESSAGE, error_message),
    ])


def sandbox_file(*, op: str, path: str | None, sandbox_id: str | None = None, backend: str | None = None,
                 sandbox_duration: float | None = None, size: int | None = None, local_path: str | None = None,
                 snapshot: str | None = None, output: str | None = None, error_type: str | None = None,
                 error_message: str | None = None) -> EventData:
    """A file operation on a sandbox (read, write, copy in or out, snapshot, restore).

    Args:
        op: The operation.
        path: The path inside the sandbox.
        sandbox_id: The sandbox.
        backend: Its backend.
        sandbox_duration: Seconds the operation took.
        size: Bytes read or written.
        local_path: The host path copied from or to.
        snapshot: The snapshot reference taken or restored.
        output: What an imported operation returned (clipped).
        error_type: Why it failed: exception type.
        error_message: And message.
    """
    return _event(EventKind.SANDBOX_FILE, [
        (SANDBOX_ID, sandbox_id), (SANDBOX_BACKEND, backend), (SANDBOX_OP, op), (FILE_PATH, _given(path)),
        (SANDBOX_DURATION, sandbox_duration), (FILE_SIZE, size), (LOCAL_PATH, local_path),
        (SANDBOX_SNAPSHOT, snapshot), (SANDBOX_OUTPUT, output), (ERROR_TYPE, error_type),
        (ERROR_MESSAGE, error_message),
    ])


def human_action(*, action: str | None = None, audit: str | None = None, by: str | None = None,
                 reason: str | None = None, decision: str | None = None, tool_name: str | None = None,
                 tool_call_id: str | None = None, arguments: Any = None, content: str | None = None,
                 answer: Any = None, kernel_outputs: Any = None, duration: float | None = None,
                 terminal_line: str | None = None, terminal_id: Any = ABSENT, snapshot_archive: str | None = None,
                 resumed_at: float | None = None, path: str | None = None, parent: str | None = None,
                 step: int | None = None, batch: str | None = None) -> EventData:
    """A person did something: worked in a session (a command, a cell, a submission), paused the clock,
    approved a call, or took an audited action on a run (``lab.audit``: launch, fork, approve).

    Args:
        action: What they did in the session (``submit``, ``pause``, ``kernel_cell``, ``approval`` ...).
        audit: The audited action taken on the run.
        by: Who took it.
        reason: Why (a pause's reason, a rejection's reason).
        decision: An approval decision (``approve``, ``edit``, ``reject``).
        tool_name: The tool the action concerns.
        tool_call_id: The tool call it concerns.
        arguments: The call's (edited) arguments, or a cell's code.
        content: Text shown or written (a cell's output, a terminal's output, a session log).
        answer: The answer submitted or checked.
        kernel_outputs: A notebook cell's outputs.
        duration: Seconds the action's work took.
        terminal_line: A line typed into a terminal.
        terminal_id: The terminal it was typed into.
        snapshot_archive: The workdir archive restored.
        resumed_at: Working time a reattached session resumed at.
        path: The file the action concerns.
        parent: The run a forked run continues.
        step: The step it was forked at.
        batch: The batch a launched run belongs to.
    """
    return _event(EventKind.HUMAN_ACTION, [
        (ACTION, action), (AUDIT, audit), (BY, by), (DECISION, decision), (TOOL_NAME, tool_name),
        (TOOL_CALL_ID, tool_call_id), (ARGUMENTS, arguments), (REASON, reason), (CONTENT, content),
        (ANSWER, answer), (KERNEL_OUTPUTS, kernel_outputs), (DURATION, duration), (TERMINAL_LINE, terminal_line),
        (TERMINAL_ID, _given(terminal_id)), (SNAPSHOT_ARCHIVE, snapshot_archive), (RESUMED_AT, resumed_at),
        (FILE_PATH, path), (PARENT, parent), (STEP, step), (BATCH, batch),
    ])


def score(*, name: str, value: float | None, provenance: str, source: str | None, item_id: str | None,
          dimension: str, final: bool, label: str | None = None, explanation: str | None = None,
          details: Mapping[str, Any] | None = None) -> EventData:
    """A score with its provenance (OpenTelemetry ``gen_ai.evaluation.*`` names); see :class:`Score`.

    Args:
        name: The scorer.
        value: The value (``None``: could not score).
        provenance: ``rule``, ``model`` or ``human``.
        source: Who exactly gave it.
        item_id: The item graded.
        dimension: The rubric dimension.
        final: Whether it is the run's final score.
        label: A categorical verdict.
        explanation: Why, in words.
        details: Anything else (a judge's explanation and confidence, the opponent ...).
    """
    return _event(EventKind.SCORE, [
        (EVAL_NAME, name), (EVAL_SCORE, _given(value)), (SCORE_PROVENANCE, provenance),
        (SCORE_SOURCE, _given(source)), (SCORE_ITEM_ID, _given(item_id)), (SCORE_DIMENSION, dimension),
        (SCORE_FINAL, final), (EVAL_LABEL, label), (EVAL_EXPLANATION, explanation), (SCORE_DETAILS, details),
    ])


def limit(*, name: str | None = None, limit_type: str | None = None, value: Any = ABSENT, used: Any = ABSENT,
          reason: str | None = None) -> EventData:
    """A run hit a limit.

    Args:
        name: The lab's limit (``max_steps``, ``time``, ``invalid_replies`` ...).
        limit_type: An imported Inspect limit's type.
        value: The limit.
        used: How much was used.
        reason: What the limit said.
    """
    return _event(EventKind.LIMIT, [
        (LIMIT_NAME, name), (LIMIT_TYPE, limit_type), (LIMIT_VALUE, _given(value)), (LIMIT_USED, _given(used)),
        (REASON, reason),
    ])


def error(*, message: str, error_type: str | None = None, traceback: str | None = None,
          where: str | None = None) -> EventData:
    """Something failed.

    Args:
        message: What.
        error_type: The exception type.
        traceback: The traceback's tail.
        where: Which part (``scoring``, ``tool:shell``, ``executor`` ...).
    """
    return _event(EventKind.ERROR, [(ERROR_MESSAGE, message), (ERROR_TYPE, error_type),
                                    (ERROR_TRACEBACK, traceback), (ERROR_WHERE, where)])


def span(name: str, *, step: int | None = None, inspect_span_type: str | None = None) -> EventData:
    """A span opened: events emitted inside it hang from it.

    Args:
        name: The span's name (``step 3``, a dialog role ...).
        step: The loop step it holds.
        inspect_span_type: An imported Inspect span's type.
    """
    return _event(EventKind.SPAN, [(SPAN_NAME, name), (STEP, step), (INSPECT_SPAN_TYPE, inspect_span_type)])


def provenance(record: Mapping[str, Any]) -> EventData:
    """What a reviewer needs to reproduce the run, learnt during it (the sandbox's image ...)."""
    return _event(EventKind.PROVENANCE, [(PROVENANCE, record)])


BUILDERS: dict[EventKind, Callable[..., EventData]] = {
    EventKind.RUN_STARTED: run_started, EventKind.RUN_FINISHED: run_finished,
    EventKind.AGENT_MESSAGE: agent_message, EventKind.MODEL_CALL: model_call, EventKind.TOOL_CALL: tool_call,
    EventKind.TOOL_RESULT: tool_result, EventKind.SANDBOX_EXEC: sandbox_exec, EventKind.SANDBOX_FILE: sandbox_file,
    EventKind.HUMAN_ACTION: human_action, EventKind.SCORE: score, EventKind.LIMIT: limit, EventKind.ERROR: error,
    EventKind.SPAN: span, EventKind.PROVENANCE: provenance,
}
"""The builder of each event kind."""
