"""What the suites share: the user's selection, the profile, and the populations built so far."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .cases import ALL_DESIGNS, Design, MutationBatches, Population, fresh_copies
from .profiles import Profile
from .results import Row, failure_reason


@dataclass(frozen=True)
class Selection:
    """What the command line asked for (None = everything)."""

    sizes: tuple[int, ...]
    suites: tuple[str, ...]
    ops: frozenset[str] | None = None
    impls: frozenset[str] | None = None
    threads: int = 2
    seed: int = 1
    memory_sizes: tuple[int, ...] | None = None  # None: the profile's


@dataclass(frozen=True)
class Step:
    """One unit of progress: measures something and returns its rows."""

    label: str
    run: Callable[[], list[Row]]


@dataclass
class Context:
    profile: Profile
    selection: Selection
    _populations: dict[int, Population] = field(default_factory=dict)
    _pools: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    _streams: int = 0  # mutation batch streams handed out

    def population(self, n: int) -> Population:
        if n not in self._populations:
            self._populations[n] = Population(n, self.selection.seed)
        return self._populations[n]

    def pool(self, n: int, kind: str) -> list[int]:
        """Random lookups of stored ids: "same" = the stored int objects, "fresh" = equal copies."""
        if (n, kind) not in self._pools:
            if kind == "same":
                self._pools[n, kind] = self.population(n).pool(self.profile.pool_size(n))
            else:
                self._pools[n, kind] = fresh_copies(self.pool(n, "same"))
        return self._pools[n, kind]

    def mutation_batches(self, n: int, kind: str) -> MutationBatches:
        """Batches of stored ids to delete (as "same" or "fresh" objects), and of new ids to create.

        Every call starts another random stream: no subject, in this step or a later one,
        deletes a batch of ids that another created together.
        """
        population = self.population(n)
        self._streams += 1
        seed = (self.selection.seed * 1_000_003 + n) * 1_009 + self._streams
        return MutationBatches(
            population.pairs,
            population.words,
            population.spares,
            self.mutation_batch(n),
            seed,
            fresh=kind == "fresh",
        )

    def mutation_batch(self, n: int) -> int:
        """Ids deleted and created again per timed pass: half the flows (at n=21 a pass of a few
        ids would be mostly timer calls), at most the profile's batch."""
        return max(1, min(n // 2, self.profile.mutation_batch))

    def wants_op(self, op: str) -> bool:
        return self.selection.ops is None or op in self.selection.ops

    def skip_reason(self, design: Design, n: int) -> str | None:
        """Why design is not measured at size n in this run, or None."""
        reason = design.skip(n)
        if reason is None and n > self.profile.max_n.get(design.impl, n):
            reason = f"not in --{self.profile.name}"
        return reason

    def prepare(self, design: Design, n: int) -> tuple[dict[str, object], str | None]:
        """(the names design's statements use at size n, None), or ({}, why it cannot run)."""
        reason = self.skip_reason(design, n)
        if reason is not None:
            return {}, reason
        try:
            return self.population(n).names(design), None
        except Exception as exc:  # installed but broken (e.g. a binary built for another Python)
            return {}, failure_reason(exc)

    def designs(self, names: Iterable[str]) -> list[Design]:
        """The designs among names that the selection includes; dict, the baseline, always."""
        wanted = self.selection.impls
        return [ALL_DESIGNS[name] for name in names if wanted is None or name == "dict" or name in wanted]

    def release(self) -> None:
        """Drop the populations (the 1M ones hold hundreds of MB)."""
        self._populations.clear()
        self._pools.clear()
