"""Prove that a refactoring left the diffusion models' numbers bit-identical.

Run it once on the code before the change (``--save``) and once after (``--compare``), each time with that
code first on ``PYTHONPATH``. It records, for tiny ``dermdiff`` (v and epsilon prediction, Min-SNR-γ) and
``inpaint`` models built from fixed seeds: the losses and final weights of a few training steps, mask-
conditioned samples (guided, w = 1 and unconditional), inpainting fills, one iterative-inpainting run and
RePaint fills with an unconditional diffusers UNet. ``--compare`` reports every tensor that differs in a
single bit (``torch.equal``), and exits 1 if any does.

    PYTHONPATH=OLD/src python scripts/check_identical.py --save /tmp/ref.pt
    PYTHONPATH=NEW/src python scripts/check_identical.py --compare /tmp/ref.pt
"""

from __future__ import annotations

import argparse
import sys

import torch


def tiny(family: str, **model: object):
    from skingen.registry import build_model

    cfg = {"size": 16, "widths": [16, 32], "layers_per_block": 1, "solver_steps": 4, **model}
    torch.manual_seed(0)
    return build_model(family, cfg)


def preset(family: str):
    """The family's shipped ``tiny/`` preset at 16 px, from a fixed seed."""
    from skingen.registry import build_model
    from skingen.train.loop import resolve_config

    torch.manual_seed(0)
    return build_model(family, resolve_config(family, f"tiny/{family}", ["model.size=16"]).model)


def batch(n: int = 4, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    lesion = (torch.rand(n, 1, size, size, generator=g) > 0.7).float()
    coloured = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    image = (coloured + 0.2 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)
    return {"image": image, "coloured": coloured, "lesion": lesion}


def train(model, steps: int = 5) -> dict[str, torch.Tensor]:
    from skingen.models.base import StepContext

    ctx = StepContext(optimizers=model.make_optimizers(), backward=lambda loss: loss.backward(),
                      generator=torch.Generator().manual_seed(0), step=0, device=torch.device("cpu"))
    losses = [list(model.train_step(batch(), ctx).values()) for _ in range(steps)]
    out = {"losses": torch.tensor(losses, dtype=torch.float64)}
    out.update({f"weight.{k}": v.detach().clone() for k, v in model.state_dict().items()})
    return out


def record() -> dict[str, torch.Tensor]:
    import importlib

    # where repaint_filler lived: the backends registry (issue 30), inpaint_backends (issue 15), before that
    # repaint_inpainter in two places
    for module, name in (("skingen.generation.backends.repaint", "repaint_filler"),
                         ("skingen.generation.inpaint_backends", "repaint_filler"),
                         ("skingen.generation.inpaint_backends", "repaint_inpainter"),
                         ("skingen.inpaint.backends", "repaint_inpainter")):
        try:
            repaint_filler = getattr(importlib.import_module(module), name)
            break
        except (ImportError, AttributeError):
            continue
    from skingen.inpaint.iterative import run_iterative
    try:  # named RunParams before the issue-15 renames
        from skingen.inpaint.iterative import IterativeParams
    except ImportError:
        from skingen.inpaint.iterative import RunParams as IterativeParams
    from skingen.models.base import Condition

    torch.set_num_threads(1)
    out: dict[str, torch.Tensor] = {}
    b = batch()
    cond = Condition(coloured=b["coloured"], lesion=b["lesion"])
    for name, opts in {"v": {}, "eps": {"prediction": "epsilon"}, "snr": {"snr_gamma": 5.0},
                       "eps_snr_noclip": {"prediction": "epsilon", "snr_gamma": 5.0, "clip_x0": False}}.items():
        model = tiny("dermdiff", **opts)
        out.update({f"dermdiff.{name}.{k}": v for k, v in train(model).items()})
        model.eval()
        out[f"dermdiff.{name}.guided"] = model.sample([0, 1, 2, 3], cond, guidance=2.0)
        out[f"dermdiff.{name}.w1"] = model.sample([0, 1, 2, 3], cond, guidance=1.0, solver_steps=3)
        out[f"dermdiff.{name}.null"] = model.sample([5, 6])
        out[f"dermdiff.{name}.loss_at"] = torch.tensor(model.loss_at(b["image"], b["coloured"], b["lesion"]))

    for family in ("dcgan", "cvae", "dermgan"):   # the GANs and the VAE share the per-seed noise helper
        model = preset(family).eval()
        out[f"{family}.sample"] = model.sample([0, 1, 2, 3], cond if family == "dermgan" else None)

    model = tiny("inpaint")
    out.update({f"inpaint.{k}": v for k, v in train(model).items()})
    model.eval()
    keep = torch.ones(4, 1, 16, 16)
    keep[..., 4:12, 2:10] = 0
    gens = [torch.Generator().manual_seed(s) for s in range(4)]
    out["inpaint.fill"] = model.fill(b["image"], keep, gens)
    out["inpaint.region_loss"] = torch.tensor(model.region_loss(b["image"], keep))
    out["inpaint.sample_scratch"] = model.sample([3, 4])
    filler = model.region_filler(3) if hasattr(model, "region_filler") else model.inpainter(3)  # old name
    runs = run_iterative(filler, b["image"][:2], [7, 8], IterativeParams(steps=3, size=0.4))
    out["inpaint.iterative"] = torch.stack([r.image for r in runs])

    from diffusers import UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(16, 32), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8).eval()
    repaint = repaint_filler(unet, steps=6, jump_length=2, jump_n_sample=2, multiple=2)
    out["repaint.fill"] = repaint.fill(b["image"], keep, [torch.Generator().manual_seed(s) for s in range(4)])
    out["repaint.evaluations"] = torch.tensor(repaint.evaluations)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", metavar="FILE")
    mode.add_argument("--compare", metavar="FILE")
    args = parser.parse_args()
    import skingen

    print(f"skingen from {skingen.__file__}")
    now = record()
    if args.save:
        torch.save(now, args.save)
        print(f"saved {len(now)} tensors to {args.save}")
        return 0
    ref = torch.load(args.compare)
    differ = [k for k in ref if k not in now or not torch.equal(ref[k], now[k])]
    missing = sorted(set(now) - set(ref))
    for k in differ:
        diff = (ref[k].double() - now[k].double()).abs().max().item() if k in now else "missing"
        print(f"DIFFERS {k}: max abs diff {diff}")
    print(f"{len(ref) - len(differ)} of {len(ref)} tensors bit-identical" + (f"; new keys {missing}" if missing else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
