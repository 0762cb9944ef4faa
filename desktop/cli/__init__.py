"""The ``vertebra-review`` command line: the one place that knows both ``core`` and the desktop app.

Headless commands never load Qt: ``gui``, ``--smoke-test`` and ``bench gui`` import the desktop app when they run,
and nothing else here imports it. ``python -m desktop.cli`` runs it as the console script does.

- :mod:`desktop.cli.main` builds the parser from each command module's ``register`` and runs a command;
- one module per command (or group of commands): :mod:`~desktop.cli.study`, :mod:`~desktop.cli.synth`,
  :mod:`~desktop.cli.train`, :mod:`~desktop.cli.detect`, :mod:`~desktop.cli.evaluate`, :mod:`~desktop.cli.diagnose`,
  :mod:`~desktop.cli.models`, :mod:`~desktop.cli.consensus`, :mod:`~desktop.cli.demo`, :mod:`~desktop.cli.retrain`,
  :mod:`~desktop.cli.app` and :mod:`~desktop.cli.bench`;
- :mod:`desktop.cli.output` (exit codes, ``say``, ``warn``, the progress bar) and :mod:`desktop.cli.arguments`
  (shared argument types) import nothing of the command line's.
"""

from desktop.cli.main import main

__all__ = ["main"]
