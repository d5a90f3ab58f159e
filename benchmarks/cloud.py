"""`git cvfs ensure` from S3 (moto's server) and Azure Blob (Azurite) against the SDK's own
parallel download of the same objects to /dev/null, at the same concurrency, in one run.

    .venv/bin/python benchmarks/cloud.py                    # one 1 GiB object, 10,000 x 64 KiB, 3 rounds
    .venv/bin/python benchmarks/cloud.py --quick            # 128 MiB, 1,000 x 64 KiB, 2 rounds

Objects are put into the archive with the SDK under git-cvfs's keys, and a repository gets
their refs (the work tree holds refs: nothing materialized). Each round, alternating which
goes first:

- the SDK: boto3's download_fileobj (S3 transfer manager) or azure-storage-blob's
  download_blob(max_concurrency) for the large object; a pool of GETs read to the end for the
  small ones; bytes go to /dev/null, nothing is hashed;
- git-cvfs: `git cvfs ensure` of the large file, then of the directory of small files: bytes
  written into the work tree, every object hashed before it is put in place.

Reports seconds, MB/s, the ratio (SDK time / git-cvfs time: 1.0 is as fast as the SDK),
per-object overhead for the small objects in ms, and ensure's peak RSS for the large object.
Both servers run on this machine, so they bound both sides alike.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import measure  # noqa: E402  (benchmarks/measure.py, beside this script)

from tests.servers import AZURITE_ACCOUNT, azurite_connection_string, start_azurite, start_moto  # noqa: E402

CVFS = str(Path(sys.executable).parent / "git-cvfs")
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
SMALL = 64 << 10
BUCKET = "bench"


def key_of(hex_digest: str) -> str:
    return f"team/objects/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}"


def ref_line(hex_digest: str, size: int) -> bytes:
    return b'{"cvfs":1,"oid":"sha256:%s","size":%d}\n' % (hex_digest.encode(), size)


class Backend:
    name = ""

    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_large(self, key: str) -> None: ...
    def get_small(self, keys: list[str]) -> None: ...
    def init_args(self) -> list[str]: ...


class S3(Backend):
    name = "S3 (moto)"

    def __init__(self, endpoint: str) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.endpoint = endpoint
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(max_pool_connections=CONCURRENCY * 2)
        )
        self.client.create_bucket(Bucket=BUCKET)
        self.transfer = TransferConfig(max_concurrency=CONCURRENCY, multipart_chunksize=16 << 20)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), BUCKET, key, Config=self.transfer)

    def get_large(self, key: str) -> None:
        with open(os.devnull, "wb") as out:
            self.client.download_fileobj(BUCKET, key, out, Config=self.transfer)

    def get_small(self, keys: list[str]) -> None:
        def one(key: str) -> None:
            body = self.client.get_object(Bucket=BUCKET, Key=key)["Body"]
            while body.read(1 << 20):
                pass

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(one, keys))

    def init_args(self) -> list[str]:
        return ["--archive", f"s3://{BUCKET}/team", "--endpoint", self.endpoint, "--region", "us-east-1"]


class Azure(Backend):
    name = "Azure (Azurite)"

    def __init__(self, blob_url: str) -> None:
        from azure.storage.blob import BlobServiceClient

        self.conn = azurite_connection_string(blob_url)
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = self.conn
        self.container = BlobServiceClient.from_connection_string(self.conn).create_container(BUCKET)

    def put(self, key: str, data: bytes) -> None:
        self.container.upload_blob(key, data, overwrite=True)

    def put_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as f:
            self.container.upload_blob(key, f, overwrite=True, max_concurrency=CONCURRENCY)

    def get_large(self, key: str) -> None:
        with open(os.devnull, "wb") as out:
            self.container.get_blob_client(key).download_blob(max_concurrency=CONCURRENCY).readinto(out)

    def get_small(self, keys: list[str]) -> None:
        def one(key: str) -> None:
            self.container.get_blob_client(key).download_blob().readall()

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(one, keys))

    def init_args(self) -> list[str]:
        return ["--archive", f"az://{AZURITE_ACCOUNT}/{BUCKET}/team"]


def seed(backend: Backend, scratch: Path, big: int, count: int) -> tuple[tuple[str, int], list[str]]:
    """The large object and the small ones in the archive; returns the large (hex, size) and the small hexes."""
    path = scratch / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = big
        while left:
            chunk = os.urandom(min(left, 16 << 20))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    large = digest.hexdigest()
    backend.put_file(key_of(large), path)
    path.unlink()

    def small(i: int) -> str:
        data = i.to_bytes(8, "big") + os.urandom(SMALL - 8)
        hex_digest = hashlib.sha256(data).hexdigest()
        backend.put(key_of(hex_digest), data)
        return hex_digest

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        smalls = list(pool.map(small, range(count)))
    return (large, big), smalls


def repository(backend: Backend, scratch: Path, env: dict[str, str]) -> Path:
    repo = scratch / f"repo-{backend.name.split()[0]}"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    subprocess.run([CVFS, "init", *backend.init_args()], cwd=repo, check=True, env=env, capture_output=True)
    subprocess.run(
        ["git", "config", "-f", ".cvfs/config", "transfer.concurrency", str(CONCURRENCY)], cwd=repo, env=env, check=True
    )
    subprocess.run([CVFS, "track", "data/**"], cwd=repo, check=True, env=env, capture_output=True)
    return repo


def write_refs(repo: Path, large: tuple[str, int], smalls: list[str]) -> None:
    (repo / "data" / "small").mkdir(parents=True, exist_ok=True)
    (repo / "data" / "big.bin").write_bytes(ref_line(*large))
    for i, hex_digest in enumerate(smalls):
        (repo / "data" / "small" / f"f{i:05d}.bin").write_bytes(ref_line(hex_digest, SMALL))


def clear_cache(repo: Path) -> None:
    subprocess.run(["rm", "-rf", str(repo / ".git" / "cvfs" / "objects")], check=True)


def timed(step: Callable[[], None]) -> float:
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def ensure_rss(repo: Path, path: str, env: dict[str, str]) -> tuple[float, int]:
    """Seconds and peak RSS (MiB) of `git cvfs ensure path` (benchmarks/measure.py: not this
    process's memory, which holds the test data)."""
    subprocess.run(["sync"], check=True)
    try:
        took, rss = measure.measured([CVFS, "ensure", path], repo, env)
    except RuntimeError as exc:
        raise SystemExit(f"error: git cvfs ensure {path} failed in {repo}\n{exc}") from None
    return took, round(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--dev-install", action="store_true", help="measure this venv's editable install instead")
    args = parser.parse_args()
    big, count = (128 << 20, 1000) if args.quick else (1 << 30, 10_000)
    rounds = args.rounds or (2 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="cvfs-bench-cloud-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        home.mkdir()
        global CVFS
        if not args.dev_install:  # as users run it: ./install.sh, bytecode compiled at install
            CVFS = measure.user_install(scratch)
        os.environ.update(
            {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        )
        env = {**measure.user_env(CVFS), "HOME": str(home), "GIT_CVFS_NO_PROGRESS": "1"}
        for key, value in [("user.name", "Bench"), ("user.email", "b@example.com"), ("init.defaultBranch", "main")]:
            subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
        subprocess.run([CVFS, "install", "--global"], env=env, check=True, capture_output=True)
        moto = start_moto()
        azurite = start_azurite(scratch)
        rows = []
        try:
            for backend in (S3(moto.url), Azure(azurite.url)):
                env["AZURE_STORAGE_CONNECTION_STRING"] = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
                start = time.perf_counter()
                large, smalls = seed(backend, scratch, big, count)
                print(f"{backend.name}: seeded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
                repo = repository(backend, scratch, env)
                t: dict[str, list[float]] = {"sdk-large": [], "cvfs-large": [], "sdk-small": [], "cvfs-small": []}
                rss = 0
                write_refs(repo, large, smalls)
                subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
                subprocess.run(["git", "commit", "-q", "-m", "refs"], cwd=repo, env=env, check=True)
                for r in range(rounds):
                    write_refs(repo, large, smalls)  # back to refs: nothing materialized
                    clear_cache(repo)
                    steps = [
                        ("sdk-large", lambda b=backend, k=key_of(large[0]): b.get_large(k)),
                        ("cvfs-large", None),
                        ("sdk-small", lambda b=backend, ks=[key_of(h) for h in smalls]: b.get_small(ks)),
                        ("cvfs-small", None),
                    ]
                    order = steps if r % 2 == 0 else [steps[1], steps[0], steps[3], steps[2]]
                    for name, step in order:
                        if step is None:
                            took, peak = ensure_rss(repo, "data/big.bin" if name == "cvfs-large" else "data/small", env)
                            if name == "cvfs-large":
                                rss = max(rss, peak)
                        else:
                            took = timed(step)
                        t[name].append(took)
                    print(
                        f"{backend.name} round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in t.items()),
                        file=sys.stderr,
                    )
                rows.append((backend.name, {k: statistics.median(v) for k, v in t.items()}, rss))
        finally:
            moto.stop()
            azurite.stop()
    print(
        f"one {big >> 20} MiB object; {count:,} x {SMALL >> 10} KiB objects; concurrency {CONCURRENCY}; medians of {rounds} rounds"
    )
    print(
        "| archive | workload | SDK to /dev/null | git cvfs ensure | SDK/ensure throughput | per object | ensure peak RSS |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, m, rss in rows:
        mbps = lambda s, n: f"{n / s / 1e6:.0f} MB/s"  # noqa: E731
        print(
            f"| {name} | {big >> 20} MiB object | {m['sdk-large']:.2f} s ({mbps(m['sdk-large'], big)}) | "
            f"{m['cvfs-large']:.2f} s ({mbps(m['cvfs-large'], big)}) | {m['sdk-large'] / m['cvfs-large']:.2f} | | {rss} MiB |"
        )
        per = (m["cvfs-small"] - m["sdk-small"]) / count * 1000
        print(
            f"| {name} | {count:,} x {SMALL >> 10} KiB | {m['sdk-small']:.2f} s | {m['cvfs-small']:.2f} s | "
            f"{m['sdk-small'] / m['cvfs-small']:.2f} | {m['sdk-small'] / count * 1000:.2f} ms / {m['cvfs-small'] / count * 1000:.2f} ms ({per:+.2f}) | |"
        )


if __name__ == "__main__":
    main()
