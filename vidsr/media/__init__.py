"""Media: everything that touches files and devices.

Probing, decoding, frame sources (files, folders, cameras), encoding sinks, resume records,
hardware codecs and image files. Frames leave here as host planes (`planes.HostFrame`) and come
back the same way; nothing in this package knows about models or the pipeline.
"""
