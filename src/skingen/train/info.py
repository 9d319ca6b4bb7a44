"""What ``skingen info`` says about a training run or checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def describe_run(run: str | Path) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """``(rows, model config)`` of a run, its ``checkpoints/`` folder or one checkpoint: model, checkpoint,
    size, parameters per network, checkpoints, training data and the latest training stats."""
    from skingen.checkpoint import list_checkpoints
    from skingen.registry import load_model
    from skingen.run_folder import RunFolder
    from skingen.runs import read_jsonl

    model, ckpt = load_model(run)
    cfg = ckpt["config"]
    rows = [("model", f"{cfg['family']} ({model.description})"),
            ("checkpoint", f"{ckpt['path']} ({cfg.get('images_seen', '?')} images seen, step {cfg.get('step', '?')})"),
            ("size", f"{model.config.size} px")]
    rows += [(f"params {name}", f"{count:,}") for name, count in model.describe().items()]
    folder = RunFolder.of_checkpoint(ckpt["path"])
    rows.append(("checkpoints", ", ".join(p.name for p in list_checkpoints(ckpt["path"].parent))))
    if folder.has_config():
        rows.append(("data", str(folder.training_data()[0])))
    records = read_jsonl(folder.path / "stats.jsonl") if (folder.path / "stats.jsonl").is_file() else []
    if records:
        rows.append(("last tick", " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in records[-1].items())))
    return rows, cfg["model"]
