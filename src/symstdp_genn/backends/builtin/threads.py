"""How many threads a split time step gets: the faster of 1 and N, measured as it runs.

A split step synchronises its threads twice per 0.5 ms step. On an idle machine that
costs microseconds and N threads win; on a machine busy with other jobs a barrier
waits for a thread that has no core, and one thread is several times faster
(measured: with the 2-core machine's load average near 6, mnist-6400 trained at
1–3 samples/s on 2 threads against 6–15 on 1). Results are byte-identical for any
thread count, so the choice may change at any call without changing a single
number; this module makes it by timing the calls themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Key = tuple[int, bool]  # (steps, record): a presentation and a rest period differ in cost


@dataclass
class ThreadChooser:
    """Per kind of call, an average cost per step for 1 and for ``threads`` threads.

    Each call runs on the cheaper count; now and then a call re-measures the other
    one, after ``first_probe`` calls of that kind and then at doubling intervals while
    the winner stays the same (up to ``max_probe``), so a change of load is followed
    while a settled choice costs almost nothing.

    The first call on a thread count is a warm-up (the team's threads start, their
    caches are cold): its cost is only a placeholder, which the next measurement of that
    count replaces instead of averaging with it. Averaged, one slow first call on N
    threads kept mnist-6400 on one thread for most of a 100-sample run (50 against 72
    samples/s with ``network.subnormals=flush``)."""

    threads: int
    first_probe: int = 8
    max_probe: int = 512
    smoothing: float = 0.5
    cost: dict[tuple[Key, int], float] = field(default_factory=dict)
    calls: dict[Key, int] = field(default_factory=dict)
    next_probe: dict[Key, int] = field(default_factory=dict)
    interval: dict[Key, int] = field(default_factory=dict)
    winner: dict[Key, int] = field(default_factory=dict)
    #: costs that come from a first, warm-up call only
    placeholders: set[tuple[Key, int]] = field(default_factory=set)

    @property
    def candidates(self) -> tuple[int, ...]:
        return (self.threads, 1) if self.threads > 1 else (1,)

    def pick(self, key: Key) -> int:
        n = self.calls[key] = self.calls.get(key, 0) + 1
        unmeasured = [t for t in self.candidates if (key, t) not in self.cost]
        if unmeasured:
            return unmeasured[0]
        ranked = sorted(self.candidates, key=lambda t: self.cost[(key, t)])
        if n >= self.next_probe.setdefault(key, n + self.first_probe):
            return ranked[-1]
        return ranked[0]

    def record(self, key: Key, threads: int, seconds_per_step: float) -> None:
        slot = (key, threads)
        old = self.cost.get(slot)
        if old is None:  # a warm-up call: its cost only stands in
            self.placeholders.add(slot)
            self.cost[slot] = seconds_per_step
        elif slot in self.placeholders:  # the first real measurement replaces it
            self.placeholders.discard(slot)
            self.cost[slot] = seconds_per_step
        else:
            self.cost[slot] = old + self.smoothing * (seconds_per_step - old)
        n = self.calls.get(key, 0)
        if key not in self.next_probe or n < self.next_probe[key]:
            return
        # that call was a probe: back off while the winner stays, else look again soon
        winner = min(self.candidates, key=lambda t: self.cost.get((key, t), float("inf")))
        same = self.winner.get(key) == winner
        self.interval[key] = (min(2 * self.interval.get(key, self.first_probe), self.max_probe)
                              if same else self.first_probe)
        self.winner[key] = winner
        self.next_probe[key] = n + self.interval[key]

    def best(self) -> int:
        """The thread count most recently found fastest (for work outside the step)."""
        measured: dict[int, float] = {}
        for (_, t), c in self.cost.items():
            measured[t] = min(c, measured.get(t, c))
        return min(measured, key=measured.get) if measured else self.threads


#: the C code's unit of a block edge: thread t's block starts at cut[t] / CUT_ONE
CUT_ONE = 1 << 16


@dataclass
class EdgeBalancer:
    """Where a split step's blocks start: moved towards the thread that waits.

    The two virtual cores of the test machine are not always equally fast, and thread 0
    also owns the populations too small to split (the inputs and outputs), so with equal
    blocks one thread waited at every barrier (thread 0: 1.7 ms of a 12.8 ms
    presentation, mnist-6400, when it also did the output layer's learning alone).
    After each split call the shares move part of the way towards making each thread's
    busy time (its own time in the call minus its barrier waits) equal. Block edges
    change no value (see ``part`` in the C code), so this tunes speed only. Plain
    floats, not numpy: it runs twice per presentation, on a few numbers."""

    threads: int
    damping: float = 0.5
    #: no thread's share leaves [floor/threads, (2 - floor)/threads]
    floor: float = 0.5
    shares: list[float] = field(init=False)
    #: what the C code reads: thread t's block starts at cut[t] / CUT_ONE
    cut: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.shares = [1.0 / self.threads] * self.threads
        self.cut = np.zeros(self.threads + 1, dtype=np.int32)
        self.set_shares(self.shares)

    def set_shares(self, shares: list[float]) -> None:
        total = sum(shares)
        self.shares = [x / total for x in shares]
        edge = 0.0
        for t, share in enumerate(self.shares):
            self.cut[t] = round(edge * CUT_ONE)
            edge += share
        self.cut[self.threads] = CUT_ONE

    def record(self, busy: list[float] | np.ndarray) -> None:
        """One split call: each thread's seconds of work in it (barrier waits excluded)."""
        busy = [float(x) for x in busy[:self.threads]]
        if min(busy) <= 0.05 * max(busy):
            return  # nothing to learn from (a thread that hardly ran)
        # a thread's share per busy second is its speed; equal busy times need shares
        # proportional to speed
        speed = [s / b for s, b in zip(self.shares, busy, strict=True)]
        lo, hi = self.floor / self.threads, (2.0 - self.floor) / self.threads
        self.set_shares([min(hi, max(lo, s + self.damping * (v / sum(speed) - s)))
                         for s, v in zip(self.shares, speed, strict=True)])
