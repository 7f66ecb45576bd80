"""Flow control as pure logic: the function configuration (`config`), the GCRA limiter shared by
throttle and rate limit (`gcra`), the fair queue of waiting items (`fairqueue`), the scheduler's
decisions for one partition (`partition`, returning `effects` on the `entries` it keeps), and
the runner's: rate limit, debounce, batching, singleton and idempotency (`ratelimit`,
`debounce`, `batching`, `singleton`, `idempotency`, returning `runner_effects`; the state of one
partition in `runner_partition`). The services carry out the effects and own durability;
nothing here does I/O or reads the time."""
