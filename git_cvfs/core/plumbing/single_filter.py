"""`git-cvfs clean|smudge -- %f`: one file per process, same results as the filter process."""

from __future__ import annotations

from typing import BinaryIO

from git_cvfs import output
from git_cvfs.core.model.buffer import SpillBuffer
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.plumbing.filter import Action, SmudgeReport, cache_chunks, clean, plan_smudge
from git_cvfs.errors import CvfsError
from git_cvfs.format.ref import MAX_REF_BYTES
from git_cvfs.local.cache import CHUNK
from git_cvfs.remote.transfer import download_to_cache


def clean_file(ws: Workspace, path: str, stdin: BinaryIO, stdout: BinaryIO) -> None:
    for chunk in clean(ws, path, iter(lambda: stdin.read(CHUNK), b"")):
        stdout.write(chunk)


def smudge_file(ws: Workspace, path: str, stdin: BinaryIO, stdout: BinaryIO) -> None:
    buf = SpillBuffer(ws.cache.tmp)
    report = SmudgeReport()
    try:
        for chunk in iter(lambda: stdin.read(CHUNK), b""):
            buf.write(chunk)
        plan = plan_smudge(ws, path, buf.head(MAX_REF_BYTES + 1), buf.size)
        if plan.action is Action.PASS:
            if plan.problem:
                output.warn(f"{path}: {plan.problem}")
            for chunk in buf.chunks():
                stdout.write(chunk)
            return
    finally:
        buf.close()
    ref = plan.ref
    assert ref is not None
    if plan.action is Action.DOWNLOAD:
        try:
            download_to_cache(ws.archives, ws.cache, ref, concurrency=ws.settings.concurrency)
            plan = plan.__class__(Action.CACHE, ref)
        except CvfsError as exc:
            report.leave(path, exc.message)
    if plan.action is Action.CACHE:
        for chunk in cache_chunks(ws, ref):
            stdout.write(chunk)
        return
    if plan.action is Action.LEAVE:
        report.leave(path, "fetch policy or GIT_CVFS_SKIP_SMUDGE=1")
    elif plan.action is Action.DEFER:
        report.defer(ws, path)
    stdout.write(ref.encode())
    report.print_notice(hook_will_run=False)
