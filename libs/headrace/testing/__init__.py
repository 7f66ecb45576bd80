"""Test support shipped with headrace: pytest plugins and fixtures for its own and users' tests."""
