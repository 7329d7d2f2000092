"""Runs one METR Task Standard operation inside a task's sandbox (standard library only; copied in).

Usage::

    python3 metr_driver.py FAMILY_DIR TASK_NAME OPERATION

``OPERATION`` is ``install``, ``start``, ``score`` (the submission on stdin), ``intermediate_score``,
``aggregate_scores`` (the score log as JSON on stdin) or ``teardown``. ``score`` on a family that scores
through ``intermediate_score`` takes one intermediate score and aggregates over it. The last line of stdout
is one JSON object: ``{"ok": true, "result": ..., "score": ...}`` (``score`` repeats a numeric result) or
``{"ok": false, "error": "..."}``; the exit status is 0 either way unless the driver itself could not run.
"""

import importlib.util
import json
import os
import sys
import traceback


def _family(family_dir):
    name = os.path.basename(os.path.normpath(family_dir))
    sys.path.insert(0, family_dir)
    spec = importlib.util.spec_from_file_location(name, os.path.join(family_dir, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TaskFamily


def _hand_over(home):
    """Give the agent what start() left in its home: chown where allowed, else make it writable."""
    try:
        import pwd

        agent = pwd.getpwnam("agent")
    except (ImportError, KeyError):
        return
    for root, dirs, files in os.walk(home):
        for p in [root] + [os.path.join(root, n) for n in dirs + files]:
            st = os.lstat(p)
            if st.st_uid == agent.pw_uid or os.path.islink(p):
                continue
            try:
                os.chown(p, agent.pw_uid, agent.pw_gid)
            except PermissionError:  # no CAP_CHOWN in a hardened sandbox: open it up instead
                os.chmod(p, st.st_mode | (0o777 if os.path.isdir(p) else 0o666))


def _run(family_dir, task_name, op):
    tf = _family(family_dir)
    if op == "install":
        return tf.install() if hasattr(tf, "install") else None
    tasks = tf.get_tasks()
    if task_name not in tasks:
        raise KeyError("no task %r in family (has %s)" % (task_name, sorted(tasks)))
    t = tasks[task_name]
    if op == "start":
        result = tf.start(t) if hasattr(tf, "start") else None
        _hand_over("/home/agent")
        return result
    if op == "teardown":
        return tf.teardown(t) if hasattr(tf, "teardown") else None
    if op == "score":
        if hasattr(tf, "score"):
            return tf.score(t, sys.stdin.read())
        r = tf.intermediate_score(t)
        entry = r if isinstance(r, dict) else {"score": r, "message": {}, "details": {}}
        return tf.aggregate_scores(t, [entry])
    if op == "intermediate_score":
        return tf.intermediate_score(t)
    if op == "aggregate_scores":
        return tf.aggregate_scores(t, json.loads(sys.stdin.read() or "[]"))
    raise ValueError("unknown operation %r" % op)


def main(argv):
    """Run the operation ``argv`` names and print its JSON reply as the last line; return the exit status."""
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = _run(argv[1], argv[2], argv[3])
        reply = {"ok": True, "result": result}
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            reply["score"] = result
        line = json.dumps(reply, default=str)
    except BaseException as e:  # report everything, including SystemExit from task code
        traceback.print_exc()
        line = json.dumps({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    sys.stdout.flush()
    print("\n" + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
