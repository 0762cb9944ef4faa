"""Studies on disk: the folder layout, importing images and annotations, and exporting for labelme."""

from core.study.layout import Study

__all__ = ["Study"]
