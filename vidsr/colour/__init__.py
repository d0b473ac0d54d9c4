"""Colour: pure functions and small stateful matchers over pixel tensors.

YUV <-> RGB conversion, per-shot histogram matching, and the shot-cut detector. Nothing here
decodes, encodes or loads a model.
"""
