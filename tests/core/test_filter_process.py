"""The filter loop driven through the real protocol, in memory, against a real repository."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.plumbing.filter import local_archive_chunks, local_archives
from git_cvfs.core.plumbing.filter_process import FilterServer
from git_cvfs.core.plumbing.hook_shims import HOOKS, is_ours
from git_cvfs.errors import IntegrityError
from git_cvfs.format.pktline import encode_packet, read_packet, read_text_list, write_content
from git_cvfs.format.ref import Ref
from tests.conftest import CVFS, CloudArchive, Project, imported_modules, new_project, rand


def git_side(
    requests: list[tuple[dict[str, str], bytes | None]], caps: tuple[str, ...] = ("clean", "smudge", "delay")
) -> bytes:
    """What git would send: handshake, then each request's headers and content."""
    out = io.BytesIO()
    for line in ("git-filter-client", "version=2"):
        out.write(encode_packet(line.encode() + b"\n"))
    out.write(b"0000")
    for cap in caps:
        out.write(encode_packet(f"capability={cap}\n".encode()))
    out.write(b"0000")
    for headers, content in requests:
        for key, value in headers.items():
            out.write(encode_packet(f"{key}={value}\n".encode()))
        out.write(b"0000")
        if content is not None:
            write_content(out.write, [content])
            out.write(b"0000")
    return out.getvalue()


class Replies:
    def __init__(self, data: bytes) -> None:
        self.src = io.BytesIO(data)
        assert read_text_list(self.src.read) == ["git-filter-server", "version=2"]
        self.caps = read_text_list(self.src.read)

    def status(self) -> str:
        lines = read_text_list(self.src.read)
        return lines[0] if lines else ""

    def content(self) -> bytes:
        parts = []
        while (pkt := read_packet(self.src.read)) is not None:
            parts.append(pkt)
        return b"".join(parts)

    def final_status(self) -> list[str]:
        return read_text_list(self.src.read)


def serve(project: Project, requests: list[tuple[dict[str, str], bytes | None]], **kw: object) -> Replies:
    out = io.BytesIO()
    ws = Workspace.discover(project.root)
    FilterServer(ws, io.BytesIO(git_side(requests, **kw)).read, out.write).serve()  # type: ignore[arg-type]
    return Replies(out.getvalue())


@pytest.fixture(autouse=True)
def _in_project(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root)


def test_handshake_agrees_on_offered_capabilities(project: Project) -> None:
    replies = serve(project, [], caps=("clean", "smudge"))
    assert replies.caps == ["capability=clean", "capability=smudge"]


def test_clean_large_small_ref_and_empty(project: Project) -> None:
    big = rand(5000)
    small = b"tiny"
    ref = Ref(hashlib.sha256(big).hexdigest(), len(big))
    replies = serve(
        project,
        [
            ({"command": "clean", "pathname": "data/big.bin"}, big),
            ({"command": "clean", "pathname": "data/small.txt"}, small),
            ({"command": "clean", "pathname": "data/ref.bin"}, ref.encode()),
            (
                {"command": "clean", "pathname": "data/spaced.bin"},
                b'{ "cvfs": 1, "oid": "' + ref.oid.encode() + b'", "size": 5000 }',
            ),
            ({"command": "clean", "pathname": "data/empty.bin"}, b""),
        ],
    )
    expected = [ref.encode(), small, ref.encode(), ref.encode(), b""]
    for want in expected:
        assert replies.status() == "status=success"
        assert replies.content() == want
        assert replies.final_status() == []
    ws = Workspace.discover(project.root)
    assert ws.cache.object_path(ref.hex).read_bytes() == big


def test_clean_with_min_size_zero_manages_the_empty_file(project: Project) -> None:
    project.git("config", "-f", ".cvfs/config", "scope.minSize", "0")
    replies = serve(project, [({"command": "clean", "pathname": "data/empty.bin"}, b"")])
    assert replies.status() == "status=success"
    assert replies.content() == Ref(hashlib.sha256(b"").hexdigest(), 0).encode()


def test_clean_is_idempotent_and_keeps_one_object(project: Project) -> None:
    big = rand(20000, seed=3)
    reqs = [({"command": "clean", "pathname": "data/big.bin"}, big)] * 3
    replies = serve(project, reqs)
    outs = []
    for _ in reqs:
        replies.status()
        outs.append(replies.content())
        replies.final_status()
    assert len(set(outs)) == 1
    ws = Workspace.discover(project.root)
    assert len(list(ws.cache.iter_objects())) == 1
    assert list(ws.cache.tmp.iterdir()) == []


def test_clean_matches_the_single_file_fallback(project: Project) -> None:
    for data in (rand(5000, seed=9), b"small", b""):
        replies = serve(project, [({"command": "clean", "pathname": "data/x.bin"}, data)])
        replies.status()
        via_process = replies.content()
        via_single = subprocess.run(
            [CVFS, "clean", "--", "data/x.bin"], input=data, capture_output=True, check=True, cwd=project.root
        ).stdout
        assert via_process == via_single


def test_one_failing_file_gets_status_error_and_the_rest_are_served(project: Project) -> None:
    ws = Workspace.discover(project.root)
    ws.cache.tmp.parent.mkdir(parents=True, exist_ok=True)
    ws.cache.tmp.write_text("not a directory")  # spooling any large file now fails
    replies = serve(
        project,
        [
            ({"command": "clean", "pathname": "data/big.bin"}, rand(5000)),
            ({"command": "clean", "pathname": "data/b.txt"}, b"fine"),
        ],
    )
    assert replies.status() == "status=error"
    assert replies.status() == "status=success"
    assert replies.content() == b"fine"


def test_unknown_command_is_an_error_not_a_crash(project: Project) -> None:
    replies = serve(
        project,
        [({"command": "frobnicate", "pathname": "x"}, b"data"), ({"command": "clean", "pathname": "data/t"}, b"ok")],
    )
    assert replies.status() == "status=error"
    assert replies.status() == "status=success"
    assert replies.content() == b"ok"


def test_smudge_from_cache_passthrough_and_malformed(project: Project) -> None:
    big = rand(5000, seed=2)
    ws = Workspace.discover(project.root)
    hex_digest, size = ws.cache.put_stream([big])
    bad = b'{"cvfs":1,"oid":"sha256:nothex","size":1}\n'
    replies = serve(
        project,
        [
            ({"command": "smudge", "pathname": "data/big.bin"}, Ref(hex_digest, size).encode()),
            ({"command": "smudge", "pathname": "data/plain.txt"}, b"plain content"),
            ({"command": "smudge", "pathname": "data/bad.bin"}, bad),
        ],
    )
    for want in (big, b"plain content", bad):
        assert replies.status() == "status=success"
        assert replies.content() == want
        replies.final_status()


def test_smudge_content_in_one_packet_none_or_several_is_answered_alike(project: Project) -> None:
    """git sends a ref in one packet; the filter must not depend on that."""
    big = rand(5000, seed=4)
    ws = Workspace.discover(project.root)
    ref = Ref(*ws.cache.put_stream([big]))
    plain = rand(100_000, seed=5)  # two packets
    encoded = ref.encode()
    split_ref = git_side([({"command": "smudge", "pathname": "data/split.bin"}, None)])
    split_ref += encode_packet(encoded[:20]) + encode_packet(encoded[20:]) + b"0000"
    out = io.BytesIO()
    requests = [
        ({"command": "smudge", "pathname": "data/big.bin"}, encoded),
        ({"command": "smudge", "pathname": "data/empty.bin"}, b""),
        ({"command": "smudge", "pathname": "data/plain.bin"}, plain),
        ({"command": "smudge", "pathname": "data/short.txt"}, b"x"),
    ]
    stream = git_side(requests) + split_ref[len(git_side([])) :]
    FilterServer(ws, io.BytesIO(stream).read, out.write).serve()
    replies = Replies(out.getvalue())
    for want in (big, b"", plain, b"x", big):
        assert replies.status() == "status=success"
        assert replies.content() == want
        assert replies.final_status() == []


def delayed_smudge(project: Project, path: str, ref: Ref) -> bytes:
    """git's side of one delayed smudge: asked, listed as available, asked again, then an
    empty list; every reply on the way is checked, and the content handed over returned."""
    replies = serve(
        project,
        [
            ({"command": "smudge", "pathname": path, "can-delay": "1"}, ref.encode()),
            ({"command": "list_available_blobs"}, None),
            ({"command": "smudge", "pathname": path}, b""),
            ({"command": "list_available_blobs"}, None),
        ],
    )
    assert replies.status() == "status=delayed"
    assert read_text_list(replies.src.read) == [f"pathname={path}"]
    assert replies.status() == "status=success"
    assert replies.status() == "status=success"
    content = replies.content()
    assert replies.final_status() == []
    assert read_text_list(replies.src.read) == []
    assert replies.status() == "status=success"
    return content


def test_delay_downloads_and_hands_back_through_list_available_blobs(s3_archive: CloudArchive, tmp_path: Path) -> None:
    import boto3

    cloud = new_project(tmp_path, s3_archive.config(), name="cloud")
    big = rand(5000, seed=4)
    hex_digest = hashlib.sha256(big).hexdigest()
    boto3.client("s3", endpoint_url=s3_archive.endpoint, region_name="us-east-1").put_object(
        Bucket="cvfs-test", Key=f"team/objects/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}", Body=big
    )
    assert delayed_smudge(cloud, "data/big.bin", Ref(hex_digest, len(big))) == big


def test_directory_archive_objects_are_verified_ahead_while_git_writes(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small object in a directory archive is delayed (when git can wait, past the first few
    files): read and hashed on another thread while git writes the files already answered,
    then handed over from memory. No download, no copy into the cache."""
    from git_cvfs.core.plumbing import filter_process

    monkeypatch.setattr(filter_process, "AHEAD_AFTER", 0)
    monkeypatch.setattr(filter_process, "AHEAD_MIN", 0)
    data = rand(5000, seed=6)
    hex_digest = hashlib.sha256(data).hexdigest()
    obj = project.archive_path(hex_digest)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(data)
    assert delayed_smudge(project, "data/x.bin", Ref(hex_digest, len(data))) == data
    assert not Workspace.discover(project.root).cache.has(hex_digest)


def test_an_object_the_directory_archive_lacks_is_handed_on_to_the_download_threads(
    s3_archive: CloudArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verifier (a thread per core) finds no copy in the directory archive: the download
    from the cloud archive runs on the download threads (transfer.concurrency of them), not
    on the verifier, and git is handed the bytes as for any delayed file."""
    import threading

    import boto3

    from git_cvfs.core.plumbing import filter_process

    monkeypatch.setattr(filter_process, "AHEAD_AFTER", 0)
    monkeypatch.setattr(filter_process, "AHEAD_MIN", 0)
    project = new_project(tmp_path, s3_archive.config("secondary"), name="both")  # primary: a directory
    data = rand(5000, seed=8)
    hex_digest = hashlib.sha256(data).hexdigest()
    boto3.client("s3", endpoint_url=s3_archive.endpoint, region_name="us-east-1").put_object(
        Bucket="cvfs-test", Key=f"team/objects/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}", Body=data
    )
    downloaded_on: list[str] = []
    download = filter_process.FilterServer._download

    def recorded(self: filter_process.FilterServer, ref: Ref) -> Path:
        downloaded_on.append(threading.current_thread().name)
        return download(self, ref)

    monkeypatch.setattr(filter_process.FilterServer, "_download", recorded)
    assert delayed_smudge(project, "data/x.bin", Ref(hex_digest, len(data))) == data
    assert [name.split("-")[0] for name in downloaded_on] == ["download"], downloaded_on


@pytest.mark.parametrize("can_delay", ["0", "1"])  # git cannot wait / the object is too big to hold
def test_directory_archive_objects_are_served_directly_and_verified(project: Project, can_delay: str) -> None:
    data = rand(5000 if can_delay == "0" else 9 << 20, seed=6)
    hex_digest = hashlib.sha256(data).hexdigest()
    obj = project.archive_path(hex_digest)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(data)
    ref = Ref(hex_digest, len(data))
    replies = serve(project, [({"command": "smudge", "pathname": "data/x.bin", "can-delay": can_delay}, ref.encode())])
    assert replies.status() == "status=success"  # not delayed: no download, no copy into the cache
    assert replies.content() == data
    assert replies.final_status() == []
    assert not Workspace.discover(project.root).cache.has(hex_digest)


def test_a_checkout_that_ends_early_leaves_no_verifier_waiting(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git delayed three files, then went away without asking for them: the verifiers waiting
    for memory (the budget holds one object here) are let go, and the process ends."""
    import threading

    from git_cvfs.core.plumbing import filter_process

    monkeypatch.setattr(filter_process, "AHEAD_BYTES", 6000)
    monkeypatch.setattr(filter_process, "AHEAD_AFTER", 0)
    monkeypatch.setattr(filter_process, "AHEAD_MIN", 0)
    requests = []
    for i in range(3):
        data = rand(5000, seed=20 + i)
        hex_digest = hashlib.sha256(data).hexdigest()
        project.archive_path(hex_digest).parent.mkdir(parents=True, exist_ok=True)
        project.archive_path(hex_digest).write_bytes(data)
        requests.append(
            ({"command": "smudge", "pathname": f"data/{i}.bin", "can-delay": "1"}, Ref(hex_digest, 5000).encode())
        )
    done = threading.Event()
    out: list[Replies] = []
    worker = threading.Thread(target=lambda: (out.append(serve(project, requests)), done.set()), daemon=True)
    worker.start()
    assert done.wait(30), "the filter process never ended"
    assert [out[0].status() for _ in range(3)] == ["status=delayed"] * 3


def test_directory_archive_object_changed_between_hash_and_stream_fails_the_reply(project: Project) -> None:
    data = rand(9 << 20, seed=7)
    hex_digest = hashlib.sha256(data).hexdigest()
    obj = project.archive_path(hex_digest)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(data)
    ws = Workspace.discover(project.root)
    chunks = local_archive_chunks(local_archives(ws), Ref(hex_digest, len(data)))
    assert chunks is not None  # the first pass verified it
    with open(obj, "r+b") as f:  # then someone rewrites it in place
        f.seek(len(data) - 1)
        f.write(bytes([data[-1] ^ 1]))
    with pytest.raises(IntegrityError, match="changed in the archive"):
        for _ in chunks:
            pass


@pytest.mark.parametrize("ahead", [False, True])  # read in line first / verified ahead on a thread
@pytest.mark.parametrize("damage", ["altered", "longer", "shorter"])
def test_corrupt_archive_object_is_never_handed_to_git(
    project: Project, damage: str, ahead: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from git_cvfs.core.plumbing import filter_process

    monkeypatch.setattr(filter_process, "AHEAD_AFTER", 0 if ahead else 8)
    monkeypatch.setattr(filter_process, "AHEAD_MIN", 0)
    big = rand(5000, seed=5)
    hex_digest = hashlib.sha256(big).hexdigest()
    obj = project.archive_path(hex_digest)
    obj.parent.mkdir(parents=True)
    # "longer" keeps the right bytes first: a prefix that verifies does not make the object good.
    obj.write_bytes({"altered": b"X" + big[1:], "longer": big + b"\0", "shorter": big[:-1]}[damage])
    ref = Ref(hex_digest, len(big))
    replies = serve(
        project,
        [
            ({"command": "smudge", "pathname": "data/big.bin", "can-delay": "1"}, ref.encode()),
            ({"command": "list_available_blobs"}, None),
            ({"command": "smudge", "pathname": "data/big.bin"}, b""),
        ],
    )
    assert replies.status() == "status=delayed"
    read_text_list(replies.src.read)
    replies.status()
    assert replies.status() == "status=success"
    assert replies.content() == ref.encode()  # the file stays a ref
    ws = Workspace.discover(project.root)
    assert not ws.cache.has(hex_digest)


def test_large_objects_are_deferred_to_the_hook(project: Project) -> None:
    project.git("config", "-f", ".cvfs/config", "smudge.streamMax", "1KB")
    big = rand(5000, seed=6)
    ws = Workspace.discover(project.root)
    hex_digest, size = ws.cache.put_stream([big])
    ref = Ref(hex_digest, size)
    replies = serve(project, [({"command": "smudge", "pathname": "data/big.bin"}, ref.encode())])
    assert replies.status() == "status=success"
    assert replies.content() == ref.encode()
    pending = list(Path(project.root, ".git", "cvfs", "pending").iterdir())
    assert [p.read_bytes() for p in pending] == [b"data/big.bin\0"]


def test_unreadable_cache_object_gets_status_error_before_any_content(project: Project) -> None:
    ws = Workspace.discover(project.root)
    hex_digest = "ab" * 32
    ws.cache.object_path(hex_digest).mkdir(parents=True)  # "has" it (a 4096-byte entry) but cannot read it
    size = ws.cache.object_path(hex_digest).stat().st_size
    replies = serve(
        project,
        [
            ({"command": "smudge", "pathname": "data/a.bin"}, Ref(hex_digest, size).encode()),
            ({"command": "clean", "pathname": "data/b.txt"}, b"next"),
        ],
    )
    assert replies.status() == "status=error"
    assert replies.status() == "status=success"
    assert replies.content() == b"next"


def test_filter_pipes_are_widened_to_one_mib(tmp_path: Path) -> None:
    import fcntl

    from git_cvfs.core.plumbing.filter_process import _widen_pipe

    r, w = os.pipe()
    try:
        assert fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) == 1 << 16  # what git gets by default
        _widen_pipe(r)
        assert fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) == 1 << 20
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "f", "wb") as f:
        _widen_pipe(f.fileno())  # not a pipe (git run by hand, say): left alone, no error


def test_the_filter_remembers_only_its_latest_deliveries_for_settling() -> None:
    from git_cvfs.core.plumbing.filter_process import RecentDeliveries

    recent = RecentDeliveries(limit=3)
    assert not recent
    for i in range(5):
        recent.add(f"data/f{i}", f"{i:040x}", i)
    recent.add("data/f2", "f" * 40, 99)  # given again: newest now
    assert list(recent.as_dict().items()) == [
        ("data/f3", (f"{3:040x}", 3)),
        ("data/f4", (f"{4:040x}", 4)),
        ("data/f2", ("f" * 40, 99)),
    ]
    recent.add("data/f3", None, 3)  # given again from a blob the filter cannot name: forgotten
    assert list(recent.as_dict()) == ["data/f4", "data/f2"]


def test_settling_takes_the_blob_git_names_and_skips_refs_spelled_otherwise(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settle_racy must only touch entries whose file git wrote from this filter's reply to that
    very blob: the id comes from git's `blob=` header, or is computed when git leaves it out; a
    ref spelled differently from Ref.encode (the reply is Ref.encode) is not recorded at all."""
    from git_cvfs.local.git import git_blob_id

    monkeypatch.setenv("GIT_CVFS_SKIP_SMUDGE", "1")  # every ref is left as it is: no object needed
    ref = Ref(hashlib.sha256(b"x").hexdigest(), 1)
    spaced = b'{"cvfs": 1, "oid": "%s", "size": 1}\n' % ref.oid.encode()
    named = "b" * 40
    server = FilterServer(
        Workspace.discover(project.root),
        io.BytesIO(
            git_side(
                [
                    ({"command": "smudge", "pathname": "data/named.bin", "blob": named}, ref.encode()),
                    ({"command": "smudge", "pathname": "data/unnamed.bin"}, ref.encode()),
                    ({"command": "smudge", "pathname": "data/spaced.bin", "blob": "c" * 40}, spaced),
                ]
            )
        ).read,
        io.BytesIO().write,
    )
    server.serve()
    assert server._delivered.as_dict() == {
        "data/named.bin": (named, len(ref.encode())),
        "data/unnamed.bin": (git_blob_id(ref.encode()), len(ref.encode())),
    }


@pytest.mark.parametrize(
    ("skip_smudge", "hooks_there"),
    [("0", True), ("1", True), ("1", False)],  # a checkout from the archive; a lazy clone; a fresh clone
)
def test_the_filter_git_waits_for_imports_only_what_it_uses(
    project: Project, skip_smudge: str, hooks_there: bool
) -> None:
    # git waits for the filter's start-up before the first file of every checkout and clone.
    # argparse, dataclasses (with inspect), concurrent.futures (with logging), tempfile, json
    # and the transfer module cost it about 55 ms between them, and a smudge served from a
    # directory archive, like a lazy clone's, needs none of them. In a fresh clone the filter
    # also writes the hooks; importlib.resources (with tempfile and shutil) cost that 30 ms.
    hooks = project.root / ".git" / "hooks"
    if not hooks_there:
        for hook in HOOKS:
            (hooks / hook).unlink()
    data = rand(5000, seed=12)
    hex_digest = hashlib.sha256(data).hexdigest()
    obj = project.archive_path(hex_digest)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(data)
    requests = [
        ({"command": "smudge", "pathname": "data/x.bin", "can-delay": "1"}, Ref(hex_digest, len(data)).encode()),
        ({"command": "smudge", "pathname": "data/plain.txt"}, b"plain content"),
    ]
    unwanted = {"argparse", "dataclasses", "concurrent.futures", "tempfile", "json", "git_cvfs.remote.transfer"}
    unwanted |= {"importlib.resources", "shutil"}
    proc = subprocess.run(  # the process ends with os._exit: its imports are read from -X importtime
        [sys.executable, "-X", "importtime", "-m", "git_cvfs", "filter-process"],
        input=git_side(requests),
        cwd=project.root,
        env={**os.environ, "GIT_CVFS_SKIP_SMUDGE": skip_smudge},
        capture_output=True,
        check=True,
    )
    replies = Replies(proc.stdout)
    assert replies.status() == "status=success"
    assert replies.content() == (data if skip_smudge == "0" else Ref(hex_digest, len(data)).encode())
    imported = imported_modules(proc.stderr.decode())
    assert "git_cvfs.core.plumbing.filter_process" in imported
    assert imported & unwanted == set()
    assert all(is_ours(hooks / hook) for hook in HOOKS)


def test_the_notice_names_paths_in_path_order_whatever_order_downloads_finished(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from git_cvfs.core.plumbing.filter import SmudgeReport

    report = SmudgeReport()
    for path in ("data/z.bin", "data/a/b.bin", "data/m.bin", "data/c.bin"):
        report.leave(path, "archive unreachable")
    report.print_notice(hook_will_run=True)
    assert "4 files left as refs (archive unreachable): data/a/b.bin, data/c.bin, data/m.bin and 1 more" in (
        capsys.readouterr().err
    )
