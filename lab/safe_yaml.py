"""Reading YAML written by people: bounded nesting and alias expansion, errors with file and line."""

from __future__ import annotations

from typing import Any

import yaml

from lab.errors import LabError

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted."""
MAX_NODES = 200_000
"""Most values a document may expand to (aliases counted each time they are used)."""


class YamlInputError(LabError):
    """A YAML file that cannot be read (the message names the file and line)."""


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document safely (plain data only; no alias bombs, no unbounded nesting).

    Args:
        text: The document.
        source: The file it came from, for messages.

    Raises:
        YamlInputError: Invalid YAML, nesting deeper than :data:`MAX_DEPTH`, or more than :data:`MAX_NODES`
            values once aliases are expanded.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise YamlInputError(f"{source}{line}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise YamlInputError(f"{source}: nested too deeply to read") from None
    if node is None:
        return None
    _check(node, source)
    return yaml.SafeLoader(text).get_single_data()


def _check(root: yaml.Node, source: str) -> None:
    """Reject deep nesting and large alias expansion, walking the node graph once (shared nodes memoised)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if depth > MAX_DEPTH:
            raise YamlInputError(f"{source}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in sizes:
            continue
        kids = _children(node)
        if children_done or not kids:
            sizes[id(node)] = 1 + sum(sizes[id(k)] for k in kids)
            if sizes[id(node)] > MAX_NODES:
                raise YamlInputError(f"{source}:{node.start_mark.line + 1}: more than {MAX_NODES:,} values once "
                                     "aliases are expanded (an alias bomb?)")
            continue
        stack.append((node, depth, True))
        stack.extend((k, depth + 1, False) for k in kids if id(k) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
