"""Annotation files parsed once and kept while they do not change on disk: the case list's summary of a slice
after an edit asks for the model's result, the other readers' files and the consensus, which an edit of the
reader's own file never changes. A file is parsed again when its size or modification time differs."""

from __future__ import annotations

import threading

from core.annotations.model import SliceAnnotation
from core.study.layout import Study

_Stamp = tuple[int, int]


class AnnotationCache:
    """``load`` answers as :meth:`Study.load_annotation` does, from memory while the file is unchanged."""

    def __init__(self, study: Study, limit: int = 4096) -> None:
        self.study = study
        self.limit = limit
        self._files: dict[str, tuple[_Stamp, SliceAnnotation]] = {}
        self._lock = threading.Lock()

    def load(self, case: str, slice_id: str, *, reader: str | None = None, model: str | None = None,
             image_size: tuple[int, int] | None = None) -> SliceAnnotation | None:
        path = self.study.annotation_path(case, slice_id, reader=reader, model=model)
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp, name = (stat.st_mtime_ns, stat.st_size), f"{path}|{image_size}"
        with self._lock:
            kept = self._files.get(name)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        found = self.study.load_annotation(case, slice_id, reader=reader, model=model, image_size=image_size)
        if found is not None:
            with self._lock:
                if len(self._files) >= self.limit:
                    self._files.pop(next(iter(self._files)))
                self._files[name] = (stamp, found)
        return found
