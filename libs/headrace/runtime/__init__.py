"""What every service's process shares: the consume loop, publishing helpers, lifecycle, and the
store-backed steps that more than one service takes (owner epochs, signal claims)."""
