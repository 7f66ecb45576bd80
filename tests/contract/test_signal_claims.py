"""Two waits racing for one signal, on every store adapter, the interleaving played step by
step: the executor claims a signal's key before it writes the run and the pause of the wait
(services/executor/signals.py), so a second wait can come in between. Exactly one wait holds
the signal: the first, unless the second replaces it (`onConflict: "replace"`)."""

from __future__ import annotations

from typing import Any

from headrace.adapters.inproc.log import InProcLog
from headrace.api.controls import RunControls
from headrace.core.clock import FakeClock
from headrace.engine import signals
from headrace.messages.model import Pause
from headrace.messages.state import RunState
from headrace.messages.topics import Topics
from headrace.ports.stores import Stores
from headrace.protocol.ops import Op, decode_op
from headrace.runtime.signal_claims import claim_signals

ACCOUNT = "acct"
NOW = 1_700_000_000_000
FIRST, SECOND = "01JRSIGNA10000000000000001", "01JRSIGNA10000000000000002"
KEY = signals.signal_key(ACCOUNT, "order-7")


def _wait(step_hash: str, **opts: Any) -> Op:
    return decode_op(
        {
            "op": "WaitForSignal",
            "id": step_hash,
            "name": "order-7",
            "opts": {"signal": "order-7", **opts},
        }
    )


async def _running(stores: Stores, run_id: str) -> RunState:
    run = RunState(run_id=run_id, account_id=ACCOUNT, fn_id="app-fn", app_id="app", events=[])
    assert await stores.create_run(run)
    found = await stores.get_run(run_id)
    assert found is not None
    return found


async def _claims(stores: Stores, run: RunState, op: Op) -> bool:
    """The executor's claim for a call that answered `op`: True when the wait holds the signal."""
    return op.id not in await claim_signals(stores, run, set(), [op], NOW)


async def _commit_wait(stores: Stores, run: RunState, step_hash: str) -> None:
    """What the executor's commit writes for the wait: the run planning it, then its pause."""
    run.planned = {step_hash: "signal"}
    await stores.save_run(run)
    pause = Pause(
        pause_id=signals.pause_id(run.run_id, step_hash),
        account_id=ACCOUNT,
        run_id=run.run_id,
        fn_id=run.fn_id,
        kind="signal",
        event_name="order-7",
        step_hash=step_hash,
        expires_ms=NOW + 3_600_000,
    )
    await stores.put_pause(pause, 0)


async def test_the_first_wait_keeps_a_signal_it_claimed_before_its_pause_was_written(
    stores: Stores,
) -> None:
    first, second = await _running(stores, FIRST), await _running(stores, SECOND)
    assert await _claims(stores, first, _wait("h1"))
    # The first wait's run and pause are not written yet: the second wait conflicts all the same.
    assert not await _claims(stores, second, _wait("h2"))
    assert await stores.holder(KEY, NOW) == signals.pause_id(FIRST, "h1")
    await _commit_wait(stores, first, "h1")
    assert not await _claims(stores, second, _wait("h2"))
    # "replace" takes it over, pause or not.
    assert await _claims(stores, second, _wait("h2", conflict="replace"))
    assert await stores.holder(KEY, NOW) == signals.pause_id(SECOND, "h2")


async def test_a_signal_taken_by_its_wait_frees_the_key_for_the_next_wait(stores: Stores) -> None:
    first, second = await _running(stores, FIRST), await _running(stores, SECOND)
    assert await _claims(stores, first, _wait("h1"))
    await _commit_wait(stores, first, "h1")

    async def no_send(account_id: str, events: list[dict[str, Any]]) -> list[str]:
        raise AssertionError("a signal sends no event")

    controls = RunControls(InProcLog(partitions=1), Topics(), stores, FakeClock(NOW), no_send)
    assert await controls.signal(ACCOUNT, "order-7", {"paid": True}) == FIRST
    # The resume has not reached the first run yet (its step is still planned): the signal was
    # taken all the same, and the next wait holds it.
    assert await _claims(stores, second, _wait("h2"))
    assert await stores.holder(KEY, NOW) == signals.pause_id(SECOND, "h2")


async def test_a_claim_whose_run_ended_before_it_wrote_its_wait_is_stale(stores: Stores) -> None:
    first, second = await _running(stores, FIRST), await _running(stores, SECOND)
    assert await _claims(stores, first, _wait("h1"))
    first.status = "cancelled"
    await stores.save_run(first)
    assert await _claims(stores, second, _wait("h2"))
    assert await stores.holder(KEY, NOW) == signals.pause_id(SECOND, "h2")


async def test_a_key_swapped_to_expire_now_is_free_at_once(stores: Stores) -> None:
    """The store guarantee the signal API's release relies on."""
    assert await stores.claim("k", "pause-1", ttl_ms=60_000, now_ms=NOW) is None
    assert await stores.swap("k", "pause-1", "pause-1", ttl_ms=0, now_ms=NOW)
    assert await stores.holder("k", now_ms=NOW) is None
    assert await stores.claim("k", "pause-2", ttl_ms=60_000, now_ms=NOW) is None
    assert await stores.holder("k", now_ms=NOW) == "pause-2"
