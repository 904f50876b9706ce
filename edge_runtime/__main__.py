"""``python -m edge_runtime``: the CLI. The signal handlers are installed first, before any heavy import (the
package's ``__init__`` imports only its errors module), so SIGTERM/SIGINT at any point of the start-up end with one
line and SIGUSR1 never kills (:mod:`edge_runtime.cli.signals`)."""
import sys

from .cli import signals

signals.install()

from .cli import main  # noqa: E402 - after the handlers, on purpose

sys.exit(main())
