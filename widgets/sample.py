"""A small synthetic study for trying the dashboard without running agents (and for its tests and benchmark).

Every run it writes is marked ``{"sample": true}`` in its config and uses the task suite ``sample``, so
sample data is never mistaken for a real experiment.
"""

from __future__ import annotations

import random
import time
import uuid

from lab.traces import Event, Score, TraceStore, schema

SAMPLE_SUITE = "sample"
_TOOLS = ("python", "shell", "search")


def _id() -> str:
    return uuid.uuid4().hex[:16]


def _run_events(run_id: str, rng: random.Random, *, human: bool, agent: str, n_events: int, skill: float,
                t0: float, budget: float, config: dict) -> tuple[list[Event], float]:
    """A plausible trace, recorded through the same event builders as real runs: steps (spans) with a model
    call or human action, a tool call and its result, and intermediate scores that improve with working time.
    Returns the events and the final score."""
    evs: list[Event] = []
    root = _id()
    elapsed, best = 0.0, 0.0

    def add(data: schema.EventData, *, span: str | None = None, parent: str | None = root, who: str = agent) -> None:
        evs.append(Event(run_id, *data, ts=t0 + elapsed, elapsed=elapsed, span_id=span or _id(), parent_id=parent,
                         agent=who))

    add(schema.run_started(config=config), span=root, parent=None)
    step = 0
    while len(evs) < n_events - 2:
        step += 1
        span = _id()
        elapsed += rng.uniform(0.2, 1.0) * budget / max(1, n_events // 4)
        add(schema.span(f"step {step}", step=step), span=span)
        if human:
            add(schema.human_action(action="edit", content=f"edited solution (attempt {step})"), parent=span)
        else:
            tin, tout = rng.randint(200, 900), rng.randint(20, 200)
            thought = f"Thought {step}: try approach {rng.randint(1, 9)}."
            add(schema.model_call(system="sample", model="smollm2",
                                  input_messages=[{"role": "user", "content": config.get("prompt", "")}],
                                  output_messages=[{"role": "assistant", "content": thought}],
                                  response_model="smollm2", finish_reasons=["tool_calls"], input_tokens=tin,
                                  output_tokens=tout), parent=span)
        tool = rng.choice(_TOOLS)
        elapsed += rng.uniform(0.5, 3.0)
        call_id = f"call_{step}"
        add(schema.tool_call(tool_name=tool, tool_call_id=call_id, arguments={"step": step}), parent=span)
        out = "\n".join(f"line {i}: value={rng.random():.4f}" for i in range(rng.choice([1, 2, 3, 40])))
        elapsed += rng.uniform(0.1, 2.0)
        add(schema.tool_result(tool_name=tool, tool_call_id=call_id, content=out), parent=span)
        if step % 3 == 0:
            best = max(best, min(1.0, skill * (1 - 2.718 ** (-elapsed / (0.4 * budget))) + rng.gauss(0, 0.05)))
            add(schema.score(name="task_score", value=round(best, 4), provenance="rule", source=None, item_id=None,
                             dimension="overall", final=False), parent=span)
    return evs, round(best, 4)


def sample_study(store: TraceStore, *, tasks: int = 6, seeds: int = 2, agents: tuple[str, ...] = ("react", "dera"),
                 experts: tuple[str, ...] = ("alice", "bob"), events_per_run: int = 40, judge: str = "smollm2",
                 rng_seed: int = 0) -> list[str]:
    """Write a synthetic study: agent runs and human-expert runs on the same tasks, rule scores over time,
    an LLM judge's grades and the experts' grades (1–5 on two dimensions) of every run, and pairwise
    preferences between runs of the same task.

    Args:
        store: Where to write.
        tasks: Number of tasks.
        seeds: Runs per agent and task.
        agents: Agent loop names.
        experts: Human experts; each attempts every task once and grades every run.
        events_per_run: Events in each run's trace.
        judge: Name of the LLM judge recorded as the model-score source.
        rng_seed: Seed of everything random.

    Returns:
        The run ids written, in order.
    """
    rng = random.Random(rng_seed)
    t0 = time.time() - 86400
    run_ids: list[str] = []
    outputs: dict[str, tuple[str, float]] = {}
    for t in range(tasks):
        task = f"{SAMPLE_SUITE}/t{t:02d}"
        prompt = f"Task {t}: improve the score of the given solution."
        attempts = [(a, "smollm2", s, False, 0.55 + 0.15 * i) for i, a in enumerate(agents) for s in range(seeds)]
        attempts += [("human", f"human:{e}", 0, True, 0.8) for e in experts]
        for agent, model, seed, human, skill in attempts:
            run_id = _id()
            config = {"sample": True, "suite": SAMPLE_SUITE, "task": task, "agent": agent, "model": model,
                      "seed": seed, "prompt": prompt,
                      "time_limit": 3600.0 if human else 900.0}
            evs, final = _run_events(run_id, rng, human=human, agent=model if human else agent,
                                     n_events=events_per_run, skill=skill * rng.uniform(0.8, 1.1), t0=t0,
                                     budget=3600.0 if human else 900.0, config=config)
            answer = f"Solution for {task} reaching score {final:.2f}."
            evs.append(Event(run_id, *schema.score(name="task_score", value=final, provenance="rule", source=None,
                                                   item_id=None, dimension="overall", final=True),
                             ts=evs[-1].ts, elapsed=evs[-1].elapsed, span_id=_id(), parent_id=evs[0].span_id))
            evs.append(Event(run_id, *schema.run_finished("done", answer=answer),
                             ts=evs[-1].ts, elapsed=evs[-1].elapsed, span_id=_id(), parent_id=evs[0].span_id))
            store.create_run(config, run_id=run_id, is_human=human, status="done", created_at=t0)
            store.append_many(evs)
            store.set_run_fields(run_id, elapsed=evs[-1].elapsed)
            run_ids.append(run_id)
            outputs[run_id] = (task, final)
            t0 += 60
    # grades: the judge and every expert grade every run on two dimensions (1-5), the judge noisier
    for run_id, (_, final) in outputs.items():
        for dim in ("correctness", "clarity"):
            truth = 1 + 4 * final
            for src, noise, prov, scorer in [(judge, 0.9, "model", f"judge:{judge}")] + [
                    (e, 0.5, "human", "expert") for e in experts]:
                grade = int(min(5, max(1, round(truth + rng.gauss(0, noise)))))
                store.add_score(run_id, Score(scorer, float(grade), provenance=prov, source=src, item_id=run_id,
                                              dimension=dim))
    # pairwise preferences between two runs of each task, by every expert
    by_task: dict[str, list[str]] = {}
    for run_id, (task, _) in outputs.items():
        by_task.setdefault(task, []).append(run_id)
    for task, ids in by_task.items():
        for e in experts:
            a, b = rng.sample(ids, 2)
            p = 0.5 + (outputs[a][1] - outputs[b][1])
            win = 1.0 if rng.random() < p else 0.0
            for run, other, v in ((a, b, win), (b, a, 1.0 - win)):
                store.add_score(run, Score("preference", v, provenance="human", source=e, item_id=task,
                                           dimension="overall", details={"opponent": other}))
    return run_ids
