"""The domain: how a run moves from one call to the next. Pure logic, no I/O."""
