"""`python -m headrace.infra up|status|down`: the same as `headrace infra`, importing less."""

from headrace.infra.cli import infra

infra(prog_name="headrace infra")
