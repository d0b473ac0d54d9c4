"""Fuzz worker: runs `vidsr upscale` in-process on each case file named on stdin's list,
appending one JSON line per case to the results file. Started by tests/test_fuzz.py,
which kills and restarts it when a case runs past its time limit."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import traceback
from pathlib import Path

import av


def run_case(case: Path) -> dict:
    from vidsr.cli import main

    out = case.with_name(case.stem + "_out.mp4")
    err, std = io.StringIO(), io.StringIO()
    record: dict = {"case": case.name}
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
            record["rc"] = main(
                [
                    "upscale",
                    str(case),
                    "-o",
                    str(out),
                    "--model",
                    "bicubic",
                    "--device",
                    "cpu",
                    "--color",
                    "shot",
                ]
            )
    except BaseException:  # noqa: BLE001 - any escape from main() is a finding
        record["rc"] = None
        record["traceback"] = traceback.format_exc()
    record["stderr"] = err.getvalue()
    if record.get("rc") == 0:
        try:
            with av.open(str(out)) as c:
                record["output_frames"] = sum(1 for _ in c.decode(video=0))
        except Exception as e:  # noqa: BLE001
            record["output_error"] = str(e)
    return record


def main() -> None:
    cases_file, results_file = Path(sys.argv[1]), Path(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, filename=str(results_file) + ".log")
    done = (
        {json.loads(line)["case"] for line in results_file.read_text().splitlines()}
        if results_file.exists()
        else set()
    )
    for name in cases_file.read_text().split():
        case = Path(name)
        if case.name in done:
            continue
        with results_file.open("a") as f:
            f.write(json.dumps({"case": case.name, "started": True}) + "\n")
        record = run_case(case)
        with results_file.open("a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
