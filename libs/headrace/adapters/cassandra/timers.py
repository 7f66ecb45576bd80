"""The timer wheel: timers by (partition number, one-minute slot), and per partition an index
of the slots that hold timers, so `timers_due` reads only non-empty slots.

- `timers`: partition = (partition, slot), clustering = (fire_ms, timer_id); slot =
  fire_ms // SLOT_MS. A minute keeps a slot partition small (the timers of one Kafka partition
  due within a minute) while a wheel refill (every 30 s for a 60 s window) reads one or two.
- `timer_slots`: partition = partition number, clustering = slot. `timers_due(p, until)` reads
  the slots <= until's slot from it (overdue ones included, which is what a takeover needs),
  then those slots, earliest first. Fired timers are deleted, so a slot empties; `timers_due`
  then drops the index rows below the first slot still holding a due timer, with one range
  deletion, so neither the index nor the slots it leads to accumulate tombstones on the path
  of the next read.
- `timer_ids`: (partition, timer_id) -> fire_ms and record, the first written: `put_timer` is
  idempotent by id (a repeat keeps the first fire time) and `delete_timer` finds the slot.

Why no timer is lost when a slot's index row is dropped while a timer is being added to it:
`put_timer` writes the timer row and only once it is acknowledged the slot's index row, and
the drop is stamped `_DROP_MARGIN_US` before `timers_due` began reading. An index row the drop
shadows was therefore written well before the read, after its timer row was acknowledged, so
the read saw that timer and did not drop its slot. The margin covers a write's time in flight
(its timeout) and clock skew between the partition's owner and a stale one during a rebalance.
"""

from __future__ import annotations

from headrace.adapters.cassandra.session import Cql
from headrace.messages.state import Timer

SLOT_MS = 60_000
_DROP_MARGIN_US = 60_000_000


class TimerTables:
    def __init__(self, cql: Cql) -> None:
        self._cql = cql
        self._timer_drop_margin_us = _DROP_MARGIN_US
        self._timer_find = cql.prepare(
            "SELECT fire_ms, record FROM {ks}.timer_ids WHERE partition = ? AND timer_id = ?"
        )
        self._timer_put_id = cql.prepare(
            "INSERT INTO {ks}.timer_ids (partition, timer_id, fire_ms, record) VALUES (?, ?, ?, ?)"
        )
        self._put_timer = cql.prepare(
            "INSERT INTO {ks}.timers (partition, slot, fire_ms, timer_id, record) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        self._timer_put_slot = cql.prepare(
            "INSERT INTO {ks}.timer_slots (partition, slot) VALUES (?, ?)"
        )
        self._delete_timer = cql.prepare(
            "DELETE FROM {ks}.timers WHERE partition = ? AND slot = ? AND fire_ms = ? "
            "AND timer_id = ?"
        )
        self._timer_delete_id = cql.prepare(
            "DELETE FROM {ks}.timer_ids WHERE partition = ? AND timer_id = ?"
        )
        self._timer_slots = cql.prepare(
            "SELECT slot FROM {ks}.timer_slots WHERE partition = ? AND slot <= ?"
        )
        self._timers_due = cql.prepare(
            "SELECT fire_ms, timer_id, record FROM {ks}.timers "
            "WHERE partition = ? AND slot = ? AND fire_ms <= ?"
        )
        self._timer_drop_slots = cql.prepare(
            "DELETE FROM {ks}.timer_slots USING TIMESTAMP ? WHERE partition = ? AND slot < ?"
        )

    async def put_timer(self, timer: Timer) -> None:
        partition, timer_id = timer.partition, timer.timer_id
        found = await self._cql.rows(self._timer_find, (partition, timer_id))
        if found:
            # Seen before: keep the first fire time, and rewrite the rows below in case the
            # first attempt stopped half-way.
            fire_ms, record = found[0]
        else:
            fire_ms, record = timer.fire_ms, timer.record
            await self._cql.write(self._timer_put_id, (partition, timer_id, fire_ms, record))
        slot = fire_ms // SLOT_MS
        # In this order (see the module's docstring): the id, the timer, then the slot's index.
        await self._cql.write(self._put_timer, (partition, slot, fire_ms, timer_id, record))
        await self._cql.write(self._timer_put_slot, (partition, slot))

    async def delete_timer(self, partition: int, timer_id: str) -> None:
        found = await self._cql.rows(self._timer_find, (partition, timer_id))
        if not found:
            return
        fire_ms = found[0][0]
        # The id goes last, so that a delete interrupted half-way can be repeated.
        await self._cql.write(
            self._delete_timer, (partition, fire_ms // SLOT_MS, fire_ms, timer_id)
        )
        await self._cql.write(self._timer_delete_id, (partition, timer_id))

    async def timers_due(self, partition: int, until_ms: int) -> list[Timer]:
        drop_stamp = self._cql.timestamp() - self._timer_drop_margin_us
        last = until_ms // SLOT_MS
        slots = [slot for (slot,) in await self._cql.rows(self._timer_slots, (partition, last))]
        found = await self._cql.rows_each(
            self._timers_due, [(partition, s, until_ms) for s in slots]
        )
        timers = [
            Timer(timer_id=timer_id, partition=partition, fire_ms=fire_ms, record=record)
            for rows in found
            for fire_ms, timer_id, record in rows
        ]
        # Slots before the first one holding a due timer are empty (all of `last` may not be).
        first_busy = next((slot for slot, rows in zip(slots, found, strict=True) if rows), last)
        if slots and slots[0] < first_busy:
            await self._cql.write(self._timer_drop_slots, (drop_stamp, partition, first_busy))
        return timers
