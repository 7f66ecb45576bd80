"""The scheduler: delivers work now or at its time (the timer wheel)."""
