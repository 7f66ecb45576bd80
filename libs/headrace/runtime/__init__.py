"""What every service's process shares: the consume loop, publishing helpers, lifecycle."""
