"""Spending a model-level trial budget where it pays: which task gets the next trials.

Every task first gets one chunk of trials, so its latency is known. After that the next
chunk goes to the task with the largest expected end-to-end gain per trial, in the
spirit of MetaSchedule's gradient task scheduler:

    gain = weight x (recent improvement per trial + best latency / trials so far)

the first term rewards tasks still improving, the second says a task with few trials and
a large share of the model's latency probably has more to give. A task measured without one
good schedule (each candidate failed, or computed wrong outputs and was marked failed) is
judged by its default kernel's latency, which the model runs in its place, unless an
alternative of its group has a good schedule. A task stops getting
trials once its search space is exhausted, it reached the per-task cap, or its kernels
are a negligible part of the model's latency. Tasks of one group are alternatives for
the same operators (a convolution's direct and Winograd kernels): the model runs the
fastest, so the group counts once, in the model's latency and in the gain: "best latency"
is the group's best and "trials so far" the whole group's, and each alternative's gain is
scaled by how close it is to that best (a fused 1x1 + depthwise kernel is judged by its
latency less the 1x1 kernel's it spares: `tunesvc.tuning.estimate`). Otherwise a
convolution with three alternatives would draw three times the trials of one with a
single kernel of the same latency. A task far behind the best of its group after a few
chunks gets no more. Tasks of one *kin* are the same operator on the same shapes with
other elementwise operators fused after it (a convolution with and without its residual
add): a job first measures its kin's best schedules on it (`workers.siblings`), so when a
kin finds something faster than an alternative's best, the alternative is judged by that
latency until it has had a job to try it (one unlucky first chunk does not rule it out
while its kin shows what the algorithm can do). Pure logic: no Ray, no TVM, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunesvc.tuning.estimate import Part, estimated_latency, net_latencies

# A task below this fraction of the model's estimated latency gets no trials beyond its
# first chunk: even making it free would not change the model's latency measurably.
NEGLIGIBLE_FRACTION = 0.01
# An alternative this many times slower than its group's best, once it has had this many
# chunks, is not going to be the one the model runs.
LOSING_FACTOR = 2.0
LOSING_AFTER_CHUNKS = 3


@dataclass
class TaskProgress:
    """What the allocator knows about one task at one share."""

    shash: str
    weight: int
    group: str = ""  # tasks of one group are alternatives ("" : a group of its own)
    also: str = ""  # a task whose operators this one computes too (`TaskSpec.also`)
    trials: int = 0
    best_sec: float | None = None
    default_sec: float | None = None
    # best latency after each finished chunk, and the trials that chunk measured
    history: list[tuple[float, int]] = field(default_factory=list)
    exhausted: bool = False
    in_flight: bool = False
    kin: str = ""  # the same operator on the same shapes ("": no kin)
    kin_best_seen: float | None = None  # its kin's best when its last job was handed out

    @property
    def group_key(self) -> str:
        """The group this task is an alternative in (its own shash when it has none)."""
        return self.group or self.shash

    @property
    def latency_sec(self) -> float | None:
        """This task's latency as the model would see it now (best tuned, else default)."""
        return self.best_sec if self.best_sec is not None else self.default_sec

    def recent_gain_per_trial(self) -> float:
        """How much the last chunk lowered this task's best latency, per trial measured."""
        if len(self.history) < 2:
            return 0.0
        (before, _), (after, measured) = self.history[-2], self.history[-1]
        return max(0.0, before - after) / max(1, measured)


@dataclass(frozen=True)
class GroupStanding:
    """Where an alternative stands in its group: the group's best latency and trials, and
    how close this task is to that best (1.0 for the best, 0.5 for one twice as slow)."""

    best_sec: float
    trials: int
    closeness: float


def gain_per_trial(task: TaskProgress, standing: GroupStanding | None,
                   group_untuned: bool = False) -> float:
    """The expected gain in model latency per trial of `task`'s next chunk (see above).
    A task measured without one good schedule (every candidate failed or computed wrong
    outputs) still costs the model its default kernel while nothing of its group (True in
    `group_untuned`) runs in its place: it draws trials as a task of that latency."""
    if task.best_sec is None:
        if task.trials == 0:
            return float("inf")
        if group_untuned and task.latency_sec is not None:  # the default kernel's
            return task.weight * task.latency_sec / task.trials
        return 0.0
    if standing is None:  # a group of its own
        return task.weight * (task.recent_gain_per_trial() + task.best_sec / max(1, task.trials))
    return task.weight * standing.closeness * (
        task.recent_gain_per_trial() + standing.best_sec / max(1, standing.trials))


@dataclass
class BudgetAllocator:
    """Hands out chunks of trials of a model-level budget, one task at a time."""

    tasks: dict[str, TaskProgress]
    total_trials: int
    cap_per_task: int
    chunk: int
    first_chunk: int | None = None  # a task's first job: enough to know its latency

    def spent(self) -> int:
        return sum(task.trials for task in self.tasks.values())

    def next_chunk(self) -> tuple[str, int] | None:
        """(task shash, cumulative trial budget for it) for the next job, or None if no
        task should get trials now (all done, or the rest are already running)."""
        left = self.total_trials - self.spent() - self._reserved()
        kin_best = self._kin_best()
        standings = self._standings(kin_best)
        candidates = [t for t in self.tasks.values() if self._eligible(t, standings)]
        if left <= 0 or not candidates:
            return None
        tuned = {t.group_key for t in self.tasks.values() if t.best_sec is not None}
        task = max(candidates, key=lambda t: (
            gain_per_trial(t, standings.get(t.shash), t.group_key not in tuned),
            t.weight, t.shash))
        task.kin_best_seen = kin_best.get(task.kin)
        wanted = self.chunk if task.trials else (self.first_chunk or self.chunk)
        size = min(wanted, left, self.cap_per_task - task.trials)
        task.in_flight = True
        self._targets[task.shash] = task.trials + size
        return task.shash, task.trials + size

    def finished(self, shash: str, slice_trials: int, best_sec: float | None,
                 default_sec: float | None, failed: bool = False) -> None:
        """Record a finished job: the slice now holds `slice_trials` records. A job that
        left its slice short of the budget it was given ran out of candidates (or
        failed): its task gets no more."""
        task = self.tasks[shash]
        target = self._targets.pop(shash, task.trials)
        measured = max(0, slice_trials - task.trials)
        task.in_flight = False
        task.trials = max(task.trials, slice_trials)  # a failed job reports 0
        task.best_sec = best_sec if best_sec is not None else task.best_sec
        task.default_sec = default_sec if default_sec is not None else task.default_sec
        if task.best_sec is not None:
            task.history.append((task.best_sec, measured))
        if failed or task.trials < target:
            task.exhausted = True

    def _eligible(self, task: TaskProgress, standings: dict[str, GroupStanding]) -> bool:
        if task.in_flight or task.exhausted or task.trials >= self.cap_per_task:
            return False
        return task.trials == 0 or not (self._negligible(task)
                                        or _losing(task, standings.get(task.shash)))

    def _negligible(self, task: TaskProgress) -> bool:
        model = estimated_latency(Part(t.group_key, t.weight, t.latency_sec, t.shash,
                                       t.also) for t in self.tasks.values() if t.latency_sec)
        if task.latency_sec is None or not model:
            return False
        return task.weight * task.latency_sec < NEGLIGIBLE_FRACTION * model

    def _net_best(self, kin_best: dict[str, float]) -> dict[str, float | None]:
        """Each task's best latency as its group compares it (a fused task less the 1x1
        kernel it spares; its kin's best where that is news to it), None while unknown."""
        return {part.shash: sec for part, sec in net_latencies(
            Part(t.group_key, t.weight, _hoped(t, kin_best), t.shash, t.also)
            for t in self.tasks.values())}

    def _kin_best(self) -> dict[str, float]:
        """The best latency measured in each kin."""
        best: dict[str, float] = {}
        for task in self.tasks.values():
            if task.kin and task.best_sec is not None:
                best[task.kin] = min(best.get(task.kin, task.best_sec), task.best_sec)
        return best

    def _standings(self, kin_best: dict[str, float]) -> dict[str, GroupStanding]:
        """The standing of every measured task of a group of two or more."""
        net = self._net_best(kin_best)
        members: dict[str, list[TaskProgress]] = {}
        for task in self.tasks.values():  # a task named as a group is that group's member
            members.setdefault(task.group_key, []).append(task)
        standings = {}
        for group in members.values():
            known = [sec for sec in (net[t.shash] for t in group) if sec is not None]
            if len(group) < 2 or not known:
                continue
            best = min(known)
            trials = sum(t.trials for t in group)
            for task in group:
                own = net[task.shash]
                if own is not None:
                    closeness = _closeness(own, best)
                    standings[task.shash] = GroupStanding(best, trials, closeness)
        return standings

    def _reserved(self) -> int:
        return sum(target - self.tasks[shash].trials for shash, target in self._targets.items())

    def __post_init__(self) -> None:
        self._targets: dict[str, int] = {}  # cumulative budget of each task in flight


def _hoped(task: TaskProgress, kin_best: dict[str, float]) -> float | None:
    """`task`'s best, or its kin's best if that is lower and has been found since the
    task's last job was handed out (its next job measures that schedule on it first)."""
    news = kin_best.get(task.kin) if task.kin else None
    if news is None or task.best_sec is None or news >= task.best_sec:
        return task.best_sec
    seen = task.kin_best_seen
    return news if seen is None or news < seen else task.best_sec


def _closeness(own_sec: float, best_sec: float) -> float:
    """best / own, in [0, 1]; a net latency at or below zero (a fused kernel faster than
    the 1x1 kernel it spares) is as close as can be."""
    if own_sec <= 0:
        return 1.0
    return 0.0 if best_sec <= 0 else min(1.0, best_sec / own_sec)


def _losing(task: TaskProgress, standing: GroupStanding | None) -> bool:
    """Whether `task` is far behind its group's best after a few chunks, each counted by
    the latency it costs the model (a fused task less the 1x1 kernel it spares)."""
    if not task.group or len(task.history) < LOSING_AFTER_CHUNKS or task.best_sec is None:
        return False
    return standing is not None and standing.closeness < 1.0 / LOSING_FACTOR
