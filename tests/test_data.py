"""Every dataset: shape, dtype, value range, split sizes, determinism, labels, fallbacks."""
import struct

import numpy as np
import pytest
import torch

from arlab import data as D

LOADERS = {
    "toy_gaussian": (lambda s: D.toy_1d("gaussian", seed=s), (1,), 20, 1000),
    "toy_mixture": (lambda s: D.toy_1d("mixture", seed=s), (1,), 100, 10000),
    "smiley": (lambda s: D.smiley_2d(seed=s), (2,), 32, 12500),
    "shapes": (lambda s: D.shapes(seed=s), (1, 20, 20), 2, 12000),
    "digits": (lambda s: D.digits(seed=s), (1, 8, 8), 2, 1797),
    "mnist": (lambda s: D.mnist(seed=s, verbose=False), (1, 28, 28), 2, 5000),
    "color_mnist": (lambda s: D.color_mnist(seed=s, verbose=False), (3, 28, 28), 4, 5000),
}


@pytest.mark.parametrize("name", LOADERS)
def test_dataset_shape_dtype_range_and_determinism(name):
    load, shape, levels, total = LOADERS[name]
    a, b = load(0), load(0)
    assert a.data_shape == shape and a.train.shape[1:] == shape
    assert a.levels == levels
    assert a.train.dtype == torch.long and a.test.dtype == torch.long
    assert a.train.shape[0] + a.test.shape[0] == total
    for x in (a.train, a.test):
        assert int(x.min()) >= 0 and int(x.max()) <= levels - 1
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    # the data is not degenerate: most levels occur (all of them in images)
    used = torch.unique(torch.cat([a.train.flatten(), a.test.flatten()])).numel()
    assert used == levels if len(shape) == 3 else used >= 0.75 * levels
    if a.classes:
        assert a.train_labels.shape == (a.train.shape[0],)
        assert a.test_labels.shape == (a.test.shape[0],)
        assert set(a.train_labels.unique().tolist()) == set(range(len(a.classes)))


def test_split_sizes_and_shapes_minimums():
    s = D.shapes()
    assert s.train.shape[0] >= 10000 and s.test.shape[0] >= 2000
    assert D.smiley_2d().train.shape[0] == 10000 and D.smiley_2d().test.shape[0] == 2500
    t = D.toy_1d("gaussian")
    assert (t.train.shape[0], t.test.shape[0]) == (800, 200)


def test_seed_changes_data():
    assert not torch.equal(D.shapes(seed=0).train[:50], D.shapes(seed=1).train[:50])
    assert not torch.equal(D.toy_1d(seed=0).train, D.toy_1d(seed=1).train)


def test_shapes_have_distinct_classes_with_plausible_area():
    s = D.shapes()
    area = s.train.flatten(1).sum(1).float()
    assert area.min() >= 3  # no empty images
    means = [area[s.train_labels == k].mean() for k in range(len(s.classes))]
    assert len({round(float(m)) for m in means}) >= 4  # classes really differ


def test_holes_are_missing_from_train_only():
    full, holed = D.toy_1d("mixture"), D.toy_1d("mixture", holes=True)
    seen_train = set(holed.train[:, 0].tolist())
    missing = set(range(holed.levels)) - seen_train
    hit = [v for v in holed.test[:, 0].tolist() if v in missing]
    assert missing and len(hit) > 10  # the test set needs levels training never saw
    assert torch.equal(full.test, holed.test)


def test_smiley_samples_follow_the_picture():
    d = D.smiley_2d()
    pic = torch.from_numpy(D.smiley_picture(32))
    counts = torch.bincount(d.train[:, 0] * 32 + d.train[:, 1], minlength=32 * 32).view(32, 32)
    bright = pic > pic.median() * 20
    assert counts[bright].sum() > 0.7 * d.train.shape[0]


def test_mnist_threshold_and_dynamic_binarisation():
    grey_tr, _, _, _, _ = D.mnist_grey(verbose=False)
    thr = D.mnist(verbose=False)
    assert torch.equal(thr.train, (grey_tr > 127).long())  # x/255 > 0.5
    dyn = D.mnist("dynamic", verbose=False)
    assert dyn.train.max() == 255 and dyn.transform is not None
    g = torch.Generator().manual_seed(0)
    a, b = dyn.transform(dyn.train[:8], g), dyn.transform(dyn.train[:8], g)
    assert set(a.unique().tolist()) <= {0, 1} and not torch.equal(a, b)  # fresh each epoch
    assert torch.equal(D.mnist("dynamic", verbose=False).test, dyn.test)  # fixed test set


def test_mnist_notice_says_which_data(capsys, tmp_path):
    D.mnist(root=tmp_path)
    assert "shipped subset" in capsys.readouterr().out


def test_mnist_download_fails_fast_offline_and_falls_back(capsys, tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    data = D.mnist(download=True, root=tmp_path)
    out = capsys.readouterr().out
    assert "unavailable" in out and "shipped subset" in out
    assert data.train.shape[0] == 4000


def _write_idx(path, array: np.ndarray):
    dims = array.shape
    code = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, code, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as f:  # torchvision reads the uncompressed files
        f.write(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_path_offline_with_tiny_idx_files(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (6, 28, 28)), "t10k": rng.integers(0, 256, (4, 28, 28))}
    for split, x in images.items():
        _write_idx(raw / f"{split}-images-idx3-ubyte", x)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(x.shape[0]) % 10)
    data = D.mnist(download=False, root=tmp_path)
    assert "torchvision" in capsys.readouterr().out
    assert data.train.shape == (6, 1, 28, 28) and data.test.shape == (4, 1, 28, 28)
    assert torch.equal(data.train[:, 0], torch.from_numpy((images["train"] > 127).astype(np.int64)))
    assert data.test_labels.tolist() == [0, 1, 2, 3]


def test_color_mnist_digits_stay_visible():
    c = D.color_mnist(verbose=False)
    grey = D.mnist_grey(verbose=False)[0]
    fg_mask = grey > 200
    bg_mask = grey < 20
    x = c.train[:100]
    for i in range(100):
        fg = x[i][:, fg_mask[i, 0]].float().mean(1)
        bg = x[i][:, bg_mask[i, 0]].float().mean(1)
        assert (fg - bg).abs().max() >= 1  # some channel differs between digit and ground


def test_missing_data_file_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("ARLAB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ships with the repository"):
        D.digits()
