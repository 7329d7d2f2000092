"""A tiny Inspect task for the lab's interop tests: arithmetic through Inspect's bash tool.

Run offline with Inspect's scriptable ``mockllm`` model and ``local`` sandbox::

    inspect eval tests/data/inspect/arith_task.py --model mockllm/model --log-dir LOGS

The mock model calls ``bash`` with ``echo $((a OP b))`` and answers with what the tool printed; for the
sample with metadata ``slip: true`` it multiplies instead of adding, so one sample scores wrong.
"""

import re

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageTool, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import match
from inspect_ai.solver import generate, use_tools
from inspect_ai.tool import bash

SAMPLES = [("What is 2 + 3?", "5"), ("What is 4 + 4?", "8"), ("What is 3 + 3?", "6")]


def _reply(messages, tools, tool_choice, config):
    last = messages[-1]
    if isinstance(last, ChatMessageTool):
        return ModelOutput.from_content("mockllm/model", f"ANSWER: {last.text.strip()}")
    a, b = map(int, re.findall(r"\d+", messages[-1].text)[:2])
    op = "*" if a == b == 4 else "+"  # the agent's slip on one sample
    return ModelOutput.for_tool_call("mockllm/model", "bash", {"command": f"echo $(({a} {op} {b}))"})


def _mock(messages, tools, tool_choice, config):
    out = _reply(messages, tools, tool_choice, config)
    n_in = sum(len(m.text.split()) for m in messages)  # word counts: no tokenizer download offline
    out.usage = ModelUsage(input_tokens=n_in, output_tokens=len(out.completion.split()) + 1,
                           total_tokens=n_in + len(out.completion.split()) + 1)
    return out


@task
def arith(epochs: int = 2) -> Task:
    return Task(
        dataset=[Sample(input=q, target=t, id=f"q{i}") for i, (q, t) in enumerate(SAMPLES, 1)],
        solver=[use_tools(bash(timeout=30)), generate()],
        scorer=match(numeric=True),
        sandbox="local",
        epochs=epochs,
        model=get_model("mockllm/model", custom_outputs=_mock),
    )
