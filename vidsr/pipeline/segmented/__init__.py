"""One long input across many workers: plan segments, upscale each, stitch by stream copy."""

from vidsr.pipeline.segmented.run import (
    SegmentedSummary,
    refuse_stateful,
    upscale_segmented,
    work_folder,
)
from vidsr.pipeline.segmented.segment import SegmentResult, SegmentTask, run_segment

__all__ = [
    "SegmentResult",
    "SegmentTask",
    "SegmentedSummary",
    "refuse_stateful",
    "run_segment",
    "upscale_segmented",
    "work_folder",
]
