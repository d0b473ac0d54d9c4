"""Engine: the compute stage.

Loading models (shipped, registry, foreign files via spandrel), tiling, host <-> device
transfers and the frame processor that turns a batch of host frames into upscaled host frames.
"""
