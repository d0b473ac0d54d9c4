"""Pipeline: the stages wired together.

The stage runner (decode -> compute -> encode threads over bounded queues), planning (tile,
batch and queue sizes; the one compute builder), the partial-output manager, and the entry
points: video files (`video`), frame folders (`folders`) and live streams (`live`).
"""
