"""Work-arounds for defects of the installed Qt binding, applied once when the desktop package is imported.

PySide6 6.12.0 on CPython 3.11 returns ``None`` from every void method (``setBrush``, ``setVisible``, …) without
taking a new reference to it. On Python 3.12 and later ``None`` is immortal and that is harmless; on 3.11 each such
call lowers ``None``'s reference count by one, and after some thousands of paints Python aborts with
"Fatal Python error: none_dealloc: deallocating None". :func:`protect_none` measures the loss with a void call
and, only when it is there, gives ``None`` a reference count that cannot run out (2**60), which is what 3.12 does.
"""

from __future__ import annotations

import sys

_IMMORTAL = 1 << 60
_PROBE_CALLS = 64


def none_reference_loss() -> int:
    """How many references to ``None`` a void PySide call loses (0 for a correct binding)."""
    from PySide6 import QtCore

    probe = QtCore.QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    lost = before - sys.getrefcount(None)
    return max(0, round(lost / _PROBE_CALLS))


def protect_none() -> bool:
    """Make ``None`` immortal on CPython before 3.12 when the binding loses references to it; True if done."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12) or none_reference_loss() == 0:
        return False
    import ctypes

    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt, the first field of every CPython object
    if refcount.value < _IMMORTAL:
        refcount.value += _IMMORTAL
    return True
