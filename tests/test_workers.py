"""Worker processes never fork a process that has run torch (``skingen.workers``).

``tests/conftest.py`` sets one torch thread, which hides the fork deadlock; the end-to-end check therefore runs
in a fresh interpreter with torch's default threads, under a timeout, as ``make demo`` ran when it hung.
"""

import ast
import subprocess
import sys
import textwrap

from tests.test_layers import SRC

# prepare after torch has run, in one process: a matmul, then a sample from a model, then prepare with 2 workers on
# 12 photos (the pool is used from 4) with the face filter on (MTCNN loading its weights is where fork deadlocked)
AFTER_TORCH = textwrap.dedent("""
    import sys
    from pathlib import Path
    import torch
    import yaml
    import skingen
    from skingen.registry import build_model
    from skingen.data.demo import write_demo_data
    from skingen.data.prepare import PrepareConfig, prepare

    out = Path(sys.argv[1])
    torch.matmul(torch.randn(512, 512), torch.randn(512, 512))
    preset = yaml.safe_load((Path(skingen.__file__).parent / "configs/tiny/dcgan.yaml").read_text())
    model = build_model("dcgan", preset["model"])
    model.sample([0, 1])
    raw = write_demo_data(out / "raw", n=12, seed=0)
    report = prepare(raw / "images", out / "data", PrepareConfig(size=32), masks=raw / "masks", workers=2)
    print("photos used", report.photos_used)
""")


def test_prepare_with_workers_after_torch_finishes(tmp_path):
    done = subprocess.run([sys.executable, "-c", AFTER_TORCH, str(tmp_path)], capture_output=True, text=True,
                          timeout=150, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=SRC.parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "photos used 12" in done.stdout


def test_every_pool_and_loader_uses_the_fork_safe_start():
    """Only ``workers.py`` imports ``multiprocessing`` or builds a process pool, and every DataLoader names its
    start method."""
    found = []
    for file in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and file.name != "workers.py":
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("multiprocessing", "ProcessPoolExecutor") for n in names):
                    found.append(f"{file.name}: imports {names}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "DataLoader" \
                    and "multiprocessing_context" not in {k.arg for k in node.keywords}:
                found.append(f"{file.name}: DataLoader without multiprocessing_context")
    assert not found, found
