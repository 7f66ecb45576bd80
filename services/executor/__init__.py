"""The executor: calls apps with the SDK protocol and moves runs through their states."""
