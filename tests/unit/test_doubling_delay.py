from headrace.core.doubling import DoublingDelay


def test_each_wait_doubles_the_next_up_to_the_ceiling() -> None:
    delay = DoublingDelay(0.5, 3.0)
    assert delay.delay_s == 0.5
    assert [delay.take() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
