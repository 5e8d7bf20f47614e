"""Fixtures of the training tests. They need torch: without it (on a device) they are skipped."""
import numpy as np
import pytest

from tests.helpers.deps import skip_modules_without

pytest_pycollect_makemodule = skip_modules_without("torch", "torchvision")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every training test runs on one torch thread (the shared fixture in tests/conftest.py)."""


class FakeVideos:
    """In-test stand-in for edgevid.data.VideoFolder: ``classes``, ``len``, ``[i] -> (BGR uint8 [T,H,W,3], label)``.

    Class k videos are tinted towards a class colour plus noise; ``lengths`` gives per-video frame counts.
    """

    def __init__(self, n=4, classes=("a", "b"), lengths=None, size=(32, 40), seed=0):
        self.classes = list(classes)
        rng = np.random.default_rng(seed)
        lengths = lengths or [2] * n
        colours = rng.integers(0, 256, size=(len(classes), 3))
        self.items = []
        for i, t in enumerate(lengths):
            label = i % len(classes)
            noise = rng.integers(-40, 40, size=(t, size[0], size[1], 3))
            frames = np.clip(colours[label] + noise, 0, 255).astype(np.uint8)
            self.items.append((frames, label))
        self.reads = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        return self.items[i]


@pytest.fixture(scope="session")
def fake_videos():
    return FakeVideos


@pytest.fixture(scope="session")
def tiny_config():
    from edgevid.models.liteeval import LiteEvalConfig

    def make(**kw):
        args = dict(num_classes=2, fine_arch="resnet18", coarse_proj=16, coarse_hidden=16, fine_hidden=32, fine_proj=32)
        args.update(kw)
        return LiteEvalConfig(**args)

    return make
