"""Graph algorithms over the model DAG: topological order, cycles, waves, ancestors and descendants.

The graph is given as `{node: upstream nodes}` (edges point from an upstream node to the nodes that
consume it). Every function is iterative (no recursion limit at thousands of nodes) and
deterministic: ties are broken by the order in which nodes are declared.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence


def downstream_map(upstream: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """{node: the nodes that list it as upstream}, in declaration order."""
    down: dict[str, list[str]] = {name: [] for name in upstream}
    for name, ups in upstream.items():
        for up in ups:
            if up in down:
                down[up].append(name)
    return down


def find_cycle(upstream: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same node (`[a, b, a]`), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(upstream, white)
    for start in upstream:
        if colour[start] != white:
            continue
        # Iterative DFS along upstream edges; `path` is the grey chain from `start`.
        path: list[str] = [start]
        iters = [iter(upstream[start])]
        colour[start] = grey
        while iters:
            advanced = False
            for nxt in iters[-1]:
                if nxt not in colour:
                    continue  # unknown nodes are reported by validation, not here
                if colour[nxt] == grey:
                    cycle = path[path.index(nxt):] + [nxt]
                    cycle.reverse()  # report it in the direction data flows
                    return cycle
                if colour[nxt] == white:
                    colour[nxt] = grey
                    path.append(nxt)
                    iters.append(iter(upstream[nxt]))
                    advanced = True
                    break
            if not advanced:
                colour[path.pop()] = black
                iters.pop()
    return None


def topological_order(upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Upstream nodes first (Kahn's algorithm); ties keep declaration order.

    Raises:
        ValueError: when the graph has a cycle (callers validate first and name the cycle).
    """
    position = {name: i for i, name in enumerate(upstream)}
    waiting = {name: sum(1 for up in ups if up in upstream) for name, ups in upstream.items()}
    down = downstream_map(upstream)
    ready = [(position[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in down[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(order) != len(upstream):
        raise ValueError("the graph has a cycle")
    return order


def descendants(upstream: Mapping[str, Sequence[str]], roots: Iterable[str],
                down: Mapping[str, Sequence[str]] | None = None) -> set[str]:
    """Every node downstream of `roots` (the roots themselves excluded unless reachable from another)."""
    down = downstream_map(upstream) if down is None else down
    seen: set[str] = set()
    queue = deque(child for root in roots for child in down.get(root, ()))
    while queue:
        name = queue.popleft()
        if name not in seen:
            seen.add(name)
            queue.extend(down.get(name, ()))
    return seen


def ancestors(upstream: Mapping[str, Sequence[str]], roots: Iterable[str]) -> set[str]:
    """Every node upstream of `roots` (the roots excluded unless reachable from another)."""
    seen: set[str] = set()
    queue = deque(up for root in roots for up in upstream.get(root, ()))
    while queue:
        name = queue.popleft()
        if name not in seen and name in upstream:
            seen.add(name)
            queue.extend(upstream[name])
    return seen


def waves(upstream: Mapping[str, Sequence[str]], selected: Iterable[str],
          order: Sequence[str] | None = None) -> list[list[str]]:
    """The selected nodes grouped into waves that can run in parallel.

    A node's wave is one more than the latest wave of its selected upstream nodes (0 without any):
    unselected upstream nodes are already fresh, so they do not hold a node back.
    """
    chosen = set(selected)
    order = topological_order(upstream) if order is None else order
    level: dict[str, int] = {}
    for name in order:
        if name in chosen:
            level[name] = 1 + max((level[up] for up in upstream[name] if up in level), default=-1)
    grouped: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for name in order:
        if name in level:
            grouped[level[name]].append(name)
    return grouped
