"""Subcommands of the `agentwatch` CLI that live in their own modules (registered in agentwatch.tooling.cli)."""
