"""The desktop app (PySide6 + pyqtgraph): the only package that imports Qt."""

import os

# Pin every Qt wrapper to PySide6 before any of them is imported (labelme's PyQt5 must never load here).
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from desktop.qt_fixes import protect_none

protect_none()
