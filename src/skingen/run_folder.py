"""A training run's folder, as ``skingen train`` writes it.

    runs/00012-dcgan-demo/
      config.yaml     family, data (absolute path), model and train settings: what ``--resume`` rebuilds
      env.json        versions, git commit, data manifest sha256
      stats.jsonl     one record per progress tick
      samples/        preview grids
      checkpoints/    step-NNNNNNNNN/ folders (see :mod:`skingen.checkpoint`)

This is the one reader of ``config.yaml``; the numbering and safe writes are :mod:`skingen.runs`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skingen.errors import SkingenError

CONFIG = "config.yaml"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunFolder:
        """The run a checkpoint folder (``RUN/checkpoints/step-N``) belongs to."""
        return cls(Path(checkpoint).parent.parent)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def has_config(self) -> bool:
        return self.config_file.is_file()

    def config(self) -> dict[str, Any]:
        """``config.yaml`` (family, data, model, train); a one-line error when this is not a run folder."""
        if not self.has_config():
            raise SkingenError(f"{self.path} is not a run folder (no config.yaml)")
        saved = self._load()
        if not isinstance(saved, dict) or not {"family", "data"} <= set(saved):
            raise SkingenError(f"{self.config_file}: not a run config (needs family, data, model and train)")
        return saved

    def settings(self) -> dict[str, Any]:
        """``config.yaml`` as far as it goes, without checks: ``{}`` when it is missing or empty (a run
        copied without it, or written by an older skingen)."""
        saved = self._load() if self.has_config() else None
        return saved if isinstance(saved, dict) else {}

    def training_data(self) -> tuple[str | None, str | None]:
        """``(data folder as saved or None, training split or None for all rows)``."""
        saved = self.settings()
        return saved.get("data"), (saved.get("train") or {}).get("split", "train") or None

    def resume_images(self, family: str, overrides: list[str], config: object | None, init: object | None = None
                      ) -> int | None:
        """Check ``train --resume`` options against this run: same family, no ``--config`` or ``--init``, and no
        override but ``train.images=N`` (a resumed run keeps its config and weights); returns that N, or None to
        keep the run's."""
        from skingen.config import parse_override

        images = None
        for text in overrides:
            keys, value = parse_override(text)
            if keys != ["train", "images"] or not isinstance(value, int):
                raise SkingenError(f"--resume keeps the run's config; only --set train.images=N may change (got '{text}')")
            images = value
        if config is not None or init is not None:
            raise SkingenError("--resume keeps the run's config and weights; drop --config and --init")
        if self.has_config() and self.config()["family"] != family:
            raise SkingenError(f"{self.path} is a '{self.config()['family']}' run, not '{family}'")
        return images

    def _load(self) -> Any:
        import yaml

        try:
            return yaml.safe_load(self.config_file.read_bytes())
        except yaml.YAMLError as exc:
            raise SkingenError(f"{self.config_file}: not valid YAML ({exc.__class__.__name__})") from None
