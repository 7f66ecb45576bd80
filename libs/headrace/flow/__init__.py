"""Flow control as pure logic: the function configuration (`config`), the GCRA limiter shared by
throttle and rate limit (`gcra`), and the fair queue of waiting items (`fairqueue`). The services
own the state and its durability; nothing here does I/O or reads the time."""
