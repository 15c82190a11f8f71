"""`python -m agentwatch.tooling.demo.stub`: serve the stub until SIGINT/SIGTERM (see `server.main`)."""

import sys

from agentwatch.tooling.demo.stub.server import main

sys.exit(main())
