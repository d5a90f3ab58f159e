from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("boto3", "botocore", "azure", "filelock", "mfusepy", "fsspec", "pandas")


def test_ruff_lint_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "git_cvfs", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["--help"], ["hook-impl", "post-checkout", "0", "0", "1"], ["hook-impl", "post-commit"]],
)
def test_cheap_paths_import_no_cloud_sdk(argv: list[str], tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    code = (
        "import sys\nfrom git_cvfs.cli import main\n"
        f"rc = main({argv!r})\n"
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "assert not heavy, heavy\nsys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "r", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_status_imports_neither_dataclasses_nor_inspect(tmp_path: Path) -> None:
    """`git cvfs status` is run in loops by scripts and agents: its imports are most of its
    time, and dataclasses (with inspect, ast, dis, tokenize) cost it 8 ms of 100."""
    root = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    cvfs = str(Path(sys.executable).parent / "git-cvfs")
    subprocess.run([cvfs, "init"], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "config", "-f", ".cvfs/config", "scope.minSize", "1KB"], cwd=root, check=True)
    subprocess.run([cvfs, "track", "*.bin"], cwd=root, check=True, capture_output=True)
    (root / "a.bin").write_bytes(b"x" * 5000)
    subprocess.run(["git", "add", "a.bin"], cwd=root, check=True, capture_output=True)
    code = (
        "import sys\nfrom git_cvfs.cli import main\nrc = main(['status'])\n"
        "slow = [m for m in ('dataclasses', 'inspect') if m in sys.modules]\n"
        "assert not slow, slow\nsys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "1 managed file" in proc.stdout, proc.stdout


LAYERS = ["format", "local", "remote", "core", "commands"]  # each imports only from those before it


def imported_names(path: Path) -> list[str]:
    """Every module a file imports, at its top or inside a function."""
    import ast

    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_layers_import_only_downward() -> None:
    """docs/ARCHITECTURE.md: format → local → remote → core → commands; output, errors, trace
    and crash beside them all. Any import counts, at the top of a module or inside a function."""
    root = Path(__file__).resolve().parents[1] / "git_cvfs"
    upward = []
    for layer_no, layer in enumerate(LAYERS):
        for path in sorted((root / layer).rglob("*.py")):
            for name in imported_names(path):
                parts = name.split(".")
                if parts[0] != "git_cvfs" or len(parts) < 2:
                    continue
                if parts[1] in LAYERS and LAYERS.index(parts[1]) > layer_no:
                    upward.append(f"{path.relative_to(root)} imports {name}")
                if parts[1] == "cli":
                    upward.append(f"{path.relative_to(root)} imports {name}")
    assert upward == []


def test_core_model_imports_no_operation() -> None:
    """git_cvfs/core/__init__.py: core/model is what the operations build on; it imports
    neither an operation (core/*.py) nor what git runs (core/plumbing)."""
    model = Path(__file__).resolve().parents[1] / "git_cvfs" / "core" / "model"
    assert sorted(p.stem for p in model.glob("*.py") if p.stem != "__init__")
    upward = []
    for path in sorted(model.glob("*.py")):
        for name in imported_names(path):
            if name == "git_cvfs.core" or (
                name.startswith("git_cvfs.core.") and not name.startswith("git_cvfs.core.model.")
            ):
                upward.append(f"{path.name} imports {name}")
    assert upward == []
