"""The review session's slice images, kept in memory: the most recently shown ones (read ahead from a worker thread
while the reader looks at the slice before), so that paging back and forth reads nothing from disk."""

from __future__ import annotations

import threading
from collections import OrderedDict

from core.imaging.image import SliceImage
from core.study.layout import Study
from core.study.slice_key import SliceKey

#: How many slice images are kept; the one used longest ago goes first.
IMAGE_CACHE = 24


class SliceImageCache:
    """``get`` answers as :meth:`Study.read_image` does, from memory for the last ``limit`` slices used; safe to call
    from several threads."""

    def __init__(self, study: Study, limit: int = IMAGE_CACHE) -> None:
        self.study = study
        self.limit = limit
        self._images: OrderedDict[SliceKey, SliceImage] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: SliceKey) -> SliceImage:
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        image = self.study.read_image(*key)
        with self._lock:
            self._images[key] = image
            while len(self._images) > self.limit:
                self._images.popitem(last=False)
        return image

    def clear(self) -> None:
        """Forget every image (the benchmark's cold switches)."""
        with self._lock:
            self._images.clear()
