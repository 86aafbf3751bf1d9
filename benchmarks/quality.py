"""Quality: every image model trained with one stated budget on the same data, test NLL in
nats/dim and bits/dim, parameters and training time, beside published teaching numbers."""
from __future__ import annotations

import torch

from arlab import data as D
from arlab.train import fit
from benchmarks.common import Record, fmt, table
from benchmarks.models import IMAGE_MODELS, build, parameters

# Berkeley CS294-158 (deep unsupervised learning), thresholded MNIST (60,000 images).
PUBLISHED = {
    "lecture demo, 20 epochs, bits/dim": {
        "rnn": 0.1113, "rnn_coords": 0.1117, "made": 0.1731, "wavenet": 0.1333,
        "wavenet_coords": 0.1193, "pixelcnn": 0.1087},
    "homework solutions, nats/dim": {
        "shapes.made": 0.0623, "shapes.pixelcnn": 0.0416, "mnist.made": 0.1106,
        "mnist.pixelcnn": 0.0756},
}


# What the published numbers were measured on (a key without a dataset is the MNIST demo).
PUBLISHED_DATA = {
    "shapes": "their 20x20 shapes set (10,466 train), not our generated shapes",
    "mnist": "thresholded full MNIST (60,000 train), not our 4,000-image subset",
}
PUBLISHED_DATA.update(dict.fromkeys(PUBLISHED["lecture demo, 20 epochs, bits/dim"],
                                    PUBLISHED_DATA["mnist"]))

LOADERS = {"mnist": lambda: D.mnist(verbose=False), "shapes": D.shapes, "digits": D.digits,
           # full MNIST (60,000 + 10,000), where torchvision can download it: not by default
           "mnist_full": lambda: D.mnist(download=True, verbose=False)}
DEFAULT = ("mnist", "shapes", "digits")


def datasets(quick: bool, names=None, skipped: list[str] | None = None):
    if quick:
        return {"shapes": D.shapes(n_train=256, n_test=64, size=8)}
    found = {}
    for name in names or DEFAULT:
        if name not in LOADERS:
            raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(LOADERS)}")
        data = LOADERS[name]()
        if name == "mnist_full" and data.train.shape[0] < 60_000:
            if skipped is not None:
                skipped.append("mnist_full (could not be downloaded here)")
            continue
        found[name] = data
    return found


def main(quick: bool = False, device: str = "cpu", command: str = "", epochs: int = 3,
         models=None, data=None) -> Record:
    budget = "quick mode: 8x8 shapes, 5 steps" if quick else (
        f"{epochs} epochs at batch 64, Adam lr 1e-3, on {device}")
    rec = Record("quality", command, f"budget: {budget}; models as in benchmarks/models.py",
                 merge=bool(models or data))
    skipped: list[str] = []
    for dname, data in datasets(quick, data, skipped).items():
        rec.add(f"{dname}.train_images", len(data.train), "images")
        rec.add(f"{dname}.epochs", epochs, "epochs")
        for name in models or IMAGE_MODELS:
            model = build(name, data.data_shape, data.levels)
            hist = fit(model, data.train, data.test, epochs=epochs, batch_size=64, lr=1e-3,
                       max_steps=5 if quick else None, device=device, progress=False)
            key = f"{dname}.{name}"
            rec.add(f"{key}.nats_per_dim", hist.final_test_nats_per_dim, "nats/dim")
            rec.add(f"{key}.bits_per_dim", hist.final_test_bits_per_dim, "bits/dim")
            rec.add(f"{key}.parameters", parameters(model), "")
            rec.add(f"{key}.train_seconds", hist.seconds, "s")
    for source, numbers in PUBLISHED.items():
        unit = "bits/dim" if "bits" in source else "nats/dim"
        for key, value in numbers.items():
            rec.add(f"published.{key}.{unit.replace('/', '_per_')}", value, unit,
                    f"Berkeley CS294-158 {source}; {PUBLISHED_DATA[key.split('.')[0]]}")
    if skipped:
        rec.notes += "; skipped: " + ", ".join(skipped)
    torch.set_grad_enabled(True)
    return rec


def summarize(section: str, values: dict) -> list[str]:
    """One table per dataset: model, size, time, test NLL, and the published number beside."""
    def get(key):
        return values.get(f"{section}.{key}", {}).get("value")

    lines = []
    keys = [k[len(section) + 1:].split(".") for k in values]
    datasets = sorted({k[0] for k in keys if k[0] != "published" and len(k) == 3})
    for dname in datasets:
        models = [m for m in IMAGE_MODELS if get(f"{dname}.{m}.bits_per_dim") is not None]
        rows = []
        for m in models:
            mnist = dname.startswith("mnist")
            lecture = get(f"published.{m}.bits_per_dim") if mnist else None
            homework = get(f"published.{'mnist' if mnist else dname}.{m}.nats_per_dim")
            rows.append([m, f"{int(get(f'{dname}.{m}.parameters')):,}",
                         fmt(get(f"{dname}.{m}.train_seconds"), 3),
                         fmt(get(f"{dname}.{m}.nats_per_dim")),
                         fmt(get(f"{dname}.{m}.bits_per_dim")),
                         fmt(lecture), fmt(homework)])
        images, epochs = get(f"{dname}.train_images"), get(f"{dname}.epochs")
        seen = f", {int(images):,} training images x {int(epochs)} epochs" if images and epochs \
            else ""
        lines += [f"**{dname}** (test set{seen})", ""] + table(
            ["model", "parameters", "train s", "nats/dim", "bits/dim",
             "Berkeley lecture bits/dim", "Berkeley homework nats/dim"], rows) + [""]
    return lines
