"""The desktop app (PySide6 + pyqtgraph), and the command line (:mod:`desktop.cli`) that knows it and ``core``.

Importing this package loads no Qt, so that the headless commands of :mod:`desktop.cli` never do; the work-around
for the Qt binding's defect (:func:`desktop.qt_fixes.protect_none`) is applied by :mod:`desktop.app`, before any
window is made.
"""

import os

# Pin every Qt wrapper to PySide6 before any of them is imported (labelme's PyQt5 must never load here).
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
