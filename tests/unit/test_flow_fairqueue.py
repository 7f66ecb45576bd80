"""The queue of items waiting for flow control: order within a queue, fairness across queues."""

from __future__ import annotations

from headrace.flow.fairqueue import FairQueue


def test_a_queue_serves_by_order_then_arrival() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("q", "late", 300, 1, "late")
    queue.push("q", "early", 100, 2, "early")
    queue.push("q", "same-time-first", 200, 3, "a")
    queue.push("q", "same-time-second", 200, 4, "b")
    assert [queue.pop("q") for _ in range(4)] == ["early", "a", "b", "late"]
    assert len(queue) == 0 and queue.heads() == []


def test_priority_moves_an_item_ahead_by_its_seconds() -> None:
    queue: FairQueue[str] = FairQueue()
    now = 1_000_000
    for seq, priority_s in enumerate([0, -60, 120, 30]):
        queue.push("q", f"p{priority_s}", now + seq - priority_s * 1000, seq, f"p{priority_s}")
    assert [queue.pop("q") for _ in range(4)] == ["p120", "p30", "p0", "p-60"]


def test_queues_are_served_in_turn_so_a_busy_one_cannot_starve_a_quiet_one() -> None:
    queue: FairQueue[str] = FairQueue()
    for n in range(100):
        queue.push("busy", f"b{n}", n, n, f"b{n}")
    queue.push("quiet", "q0", 1_000, 100, "q0")
    served = []
    for _ in range(3):
        name, _, _ = queue.heads()[0]
        served.append(queue.pop(name))
    assert served == ["b0", "q0", "b1"]


def test_removed_items_are_skipped_and_a_push_is_idempotent() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("q", "a", 1, 1, "a")
    queue.push("q", "b", 2, 2, "b")
    queue.push("q", "b", 0, 3, "b-again")
    assert queue.remove("a") == "a" and queue.remove("a") is None
    assert "a" not in queue and "b" in queue and queue.has_queue("q")
    assert [(q, i) for q, i, _ in queue.heads()] == [("q", "b")]
    assert queue.pop("q") == "b"
    assert not queue.has_queue("q")
    queue.push("q", "a", 5, 5, "a2")
    assert queue.pop("q") == "a2"
