"""Flow control as pure logic: the function configuration (`config`), the GCRA limiter shared by
throttle and rate limit (`gcra`), the fair queue of waiting items (`fairqueue`), and the
scheduler's decisions for one partition (`partition`, returning `effects` on the `entries` it
keeps). The services carry out the effects and own durability; nothing here does I/O or reads
the time."""
