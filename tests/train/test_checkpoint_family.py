"""Loading a checkpoint of the wrong family names the family it is for."""
from __future__ import annotations

import pytest
import torch

from edgevid.errors import CheckpointError
from edgevid.fsutil import sha256_file
from edgevid.models.checkpoint import checkpoint_family, open_checkpoint


def save(tmp_path, ckpt, name="x.pt"):
    torch.save(ckpt, str(tmp_path / name))
    return tmp_path / name


TRAIN = {"format": "edgevid.train/1", "model": {}, "config": {"model": {}}}


@pytest.mark.parametrize("ckpt,family", [
    (dict(TRAIN, family="liteeval"), "liteeval"),
    (dict(TRAIN, family="prernn"), "prernn"),
    ({"format": "edgevid.slowfast/1"}, "slowfast"),
    ({"format": "edgevid.train/1"}, None),
    ({"state_dict": {}}, None),
    ({"format": 3}, None),
])
def test_checkpoint_family(tmp_path, ckpt, family):
    assert checkpoint_family(ckpt) == family
    path = save(tmp_path, ckpt)
    read = open_checkpoint(path)  # one read gives the contents and the file's sha256
    assert checkpoint_family(read) == family and read.sha256 == sha256_file(path) and str(read) == str(path)
    assert open_checkpoint(read) is read


def test_slowfast_loader_names_the_family_of_a_liteeval_checkpoint(tmp_path):
    from edgevid.models.slowfast_weights import load_slowfast_checkpoint

    path = save(tmp_path, dict(TRAIN, family="liteeval"))
    for preset in (None, "tiny"):
        with pytest.raises(CheckpointError, match="is an edgevid liteeval checkpoint, not a SlowFast one") as e:
            load_slowfast_checkpoint(path, preset=preset)
        assert "--preset" not in str(e.value)


def test_slowfast_loader_without_preset_for_a_foreign_file(tmp_path):
    from edgevid.models.slowfast_weights import load_slowfast_checkpoint

    with pytest.raises(CheckpointError, match="not an edgevid SlowFast checkpoint.*no edgevid format field"):
        load_slowfast_checkpoint(save(tmp_path, {"state_dict": {}}))


@pytest.mark.parametrize("loader,other", [("liteeval", "slowfast"), ("prernn", "liteeval"), ("liteeval", "prernn")])
def test_liteeval_and_prernn_loaders_name_the_family(tmp_path, loader, other):
    from edgevid.train.liteeval import load_liteeval_checkpoint
    from edgevid.train.prernn import load_prernn_checkpoint

    load = {"liteeval": load_liteeval_checkpoint, "prernn": load_prernn_checkpoint}[loader]
    ckpt = {"format": "edgevid.slowfast/1"} if other == "slowfast" else dict(TRAIN, family=other)
    with pytest.raises(CheckpointError, match="is an edgevid %s checkpoint, not a" % other):
        load(save(tmp_path, ckpt))


def test_foreign_file_is_not_an_edgevid_checkpoint(tmp_path):
    from edgevid.train.liteeval import load_liteeval_checkpoint

    with pytest.raises(CheckpointError, match="is not an edgevid LiteEval checkpoint: it has no edgevid format"):
        load_liteeval_checkpoint(save(tmp_path, {"state_dict": {}}))
