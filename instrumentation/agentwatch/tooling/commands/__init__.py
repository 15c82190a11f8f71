"""Every subcommand of the `agentwatch` CLI, one module per command or command group, registered in
agentwatch.tooling.cli; `common` holds what they share (the error exit, the `--thresholds` option)."""
