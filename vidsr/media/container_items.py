"""Chapters and attachments (MKV fonts, cover images): copied as ``ffmpeg -map 0`` does.

Chapters go into every container that has them (Matroska, WebM, MP4, MOV, NUT);
attachments only into Matroska. Where the output cannot hold an item, a warning names it.
"""

from __future__ import annotations

import logging

import av

from vidsr.media.probe import VideoInfo

log = logging.getLogger(__name__)

CHAPTER_CONTAINERS = frozenset({"matroska", "webm", "mp4", "mov", "nut"})
ATTACHMENT_CONTAINERS = frozenset({"matroska"})


def plan_items(info: VideoInfo, container_format: str, ext: str) -> tuple[bool, tuple[int, ...]]:
    """Whether chapters are copied, and the input stream indexes of the attachments to copy.

    Warns once per item that the ``container_format`` output cannot hold."""
    chapters = bool(info.chapters)
    if chapters and container_format not in CHAPTER_CONTAINERS:
        titles = ", ".join(repr(c["metadata"].get("title", f"#{c['id']}")) for c in info.chapters)
        log.warning(
            "%d chapters (%s) are not copied: a %s file cannot hold chapters; "
            "use .mkv, .mp4 or .mov",
            len(info.chapters),
            titles,
            ext,
        )
        chapters = False
    attachments = []
    for stream in info.other_streams:
        if stream.kind != "attachment":
            continue
        if container_format in ATTACHMENT_CONTAINERS:
            attachments.append(stream.index)
        else:
            log.warning(
                "attachment #%d (%s) is not copied: a %s file cannot hold attachments; use .mkv",
                stream.index,
                stream.name or stream.codec,
                ext,
            )
    return chapters, tuple(attachments)


def write_items(
    out: av.container.OutputContainer,
    info: VideoInfo,
    copy_chapters: bool,
    attachments: tuple[int, ...],
    source: av.container.InputContainer | None,
) -> None:
    """Add the chapters and attachments to ``out`` before its header is written.

    ``source`` is the open input container, needed when there are attachments."""
    if copy_chapters:
        out.set_chapters([dict(c) for c in info.chapters])
    for index in attachments:
        assert source is not None, "attachments need the open input"
        stream = source.streams[index]
        name = stream.metadata.get("filename") or f"attachment{index}"
        mimetype = stream.mimetype or stream.metadata.get("mimetype") or "application/octet-stream"
        copied = out.add_attachment(name, mimetype, stream.data)
        copied.metadata.update(stream.metadata)
