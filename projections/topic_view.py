"""The whole Kafka topic in one window projection, for `billing metrics`, `monitor` and `replay`.

On Kafka every worker folds only the partitions it owns (`commands/kafka/worker.py`), and a
user with two plans has events in two partitions: per-partition projections cannot answer
"how many users were active", since a user is counted once per partition. `TopicView`
folds every partition of the topic into one projection instead, read by a plain consumer
(no group: it never takes partitions from the workers).

The fold needs one rising position; a topic has one offset sequence per partition. So the
view numbers the records in the order it folds them (the projection's position) and
stores each partition's next offset beside it, in the same atomic batch. What the fold
sums does not depend on how the partitions interleave: counts and amounts add up, last
active minutes are maxima, and the one order that matters (a payment's confirmation before
anything recorded for it later) is inside one partition, which Kafka keeps in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from pipeline.errors import LogError
from pipeline.events import Recorded
from pipeline.log.kafka import KafkaTopic
from pipeline.log.store import Store
from projections.windows import WindowProjection

PARTITION_KEY: Final = b"\x00partition/"  # + partition (4 bytes): the next offset to fold there
CHUNK: Final = 5000  # records per commit


def _key(partition: int) -> bytes:
    return PARTITION_KEY + partition.to_bytes(4, "big")


def stored_offsets(store: Store) -> dict[int, int]:
    """Each partition's next offset to fold, as last committed."""
    end = PARTITION_KEY[:-1] + bytes([PARTITION_KEY[-1] + 1])
    return {
        int.from_bytes(k[len(PARTITION_KEY) :], "big"): int.from_bytes(v, "big")
        for k, v in store.scan(PARTITION_KEY, end)
    }


class TopicView:
    """A `WindowProjection` of every partition of ``topic``."""

    def __init__(self, topic: KafkaTopic, projection: WindowProjection) -> None:
        self.topic = topic
        self.projection = projection
        self.offsets = dict.fromkeys(range(topic.partitions), 0) | stored_offsets(projection.store)

    def apply(self, batch: list[Recorded]) -> None:
        """Fold records of any partitions (each partition's in its order), numbered on from the position."""
        first = self.projection.position
        self.projection.apply([Recorded(first + i, r.event, r.partition) for i, r in enumerate(batch)])
        for record in batch:
            self.offsets[record.partition] = record.offset + 1

    def commit(self) -> None:
        self.projection.commit(extra=[(_key(p), offset.to_bytes(8, "big")) for p, offset in self.offsets.items()])

    async def catch_up(self) -> int:
        """Fold what every partition holds now; return how many records were folded.

        Each partition is read from the last record folded from it: that record must still be
        there, or the topic was recreated (Tansu keeps topics in memory only) or truncated, and
        what this view holds no longer matches it.
        """
        start = self.projection.position
        unchecked = {p for p, offset in self.offsets.items() if offset}
        async for batch in self.topic.read_all({p: max(offset - 1, 0) for p, offset in self.offsets.items()}):
            unchecked -= {r.partition for r in batch if r.offset == self.offsets[r.partition] - 1}
            self.apply([r for r in batch if r.offset >= self.offsets[r.partition]])
            if self.projection.pending >= CHUNK:
                self.commit()
        if self.projection.needs_commit:
            self.commit()
        if unchecked:
            raise LogError(
                f"partition(s) {sorted(unchecked)} of topic {self.topic.name} end before what this view "
                "folded from them: the topic was recreated or truncated. Rebuild the view: `billing replay`"
            )
        return self.projection.position - start

    async def follow(self, observe: Callable[[Recorded], None] | None = None) -> None:
        """Fold records as they arrive, committing every `CHUNK` records and whenever the topic is quiet."""
        try:
            async for batch in self.topic.read_all(dict(self.offsets), follow=True, quiet=True):
                if batch:
                    self.apply(batch)
                    if observe is not None:
                        for record in batch:
                            observe(record)
                if self.projection.pending >= CHUNK or (not batch and self.projection.needs_commit):
                    self.commit()
        finally:
            if self.projection.pending:
                self.commit()
