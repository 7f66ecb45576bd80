pytest_plugins = ["headrace.testing.infra"]
