"""``edgevid verify BUNDLE --checkpoint CKPT`` with a checkpoint of another family names both families and
says what to pass (no talk of a --preset that verify does not have)."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgevid.errors import CheckpointError

torch = pytest.importorskip("torch")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema1"


def checkpoint(tmp_path, family):
    """A file with the fields edgevid's checkpoints carry (weights left out: the family check comes first)."""
    if family == "slowfast-own":
        ckpt = {"format": "edgevid.slowfast/1", "config": {}, "labels": [], "state_dict": {}}
    elif family == "foreign":
        ckpt = {"slow_conv.weight": torch.zeros(1)}
    else:
        ckpt = {"format": "edgevid.train/1", "family": family, "model": {}, "config": {"model": {}}}
    path = tmp_path / ("%s.pt" % family)
    torch.save(ckpt, str(path))
    return path


@pytest.mark.parametrize("bundle,ckpt,found", [
    ("slowfast", "liteeval", "liteeval"),
    ("slowfast", "prernn", "prernn"),
    ("prernn", "slowfast", "slowfast"),
    ("prernn", "slowfast-own", "slowfast"),
    ("liteeval", "prernn", "prernn"),
    ("liteeval", "slowfast", "slowfast"),
])
def test_checkpoint_of_another_family(edgevid_cli, tmp_path, capsys, bundle, ckpt, found):
    code = edgevid_cli(["verify", str(FIXTURES / bundle), "--checkpoint", str(checkpoint(tmp_path, ckpt))])
    err = capsys.readouterr().err
    assert code == CheckpointError.exit_code, err
    assert "is an edgevid %s checkpoint; this bundle is %s" % (found, bundle) in err, err
    assert "pass the checkpoint it was exported from" in err.lower(), err
    assert "--preset" not in err and "Traceback" not in err


def test_the_fix_names_the_file_the_bundle_records(edgevid_cli, tmp_path, capsys):
    edgevid_cli(["verify", str(FIXTURES / "liteeval"), "--checkpoint", str(checkpoint(tmp_path, "slowfast"))])
    # the schema-1 fixture records {"path": "ckpt.pt"}; bundles written now record {"file", "sha256"}
    assert "this bundle is liteeval" in capsys.readouterr().err


@pytest.mark.parametrize("bundle", ["liteeval", "prernn", "slowfast"])
def test_a_foreign_file_for_a_bundle_exported_from_an_edgevid_checkpoint(edgevid_cli, tmp_path, capsys, bundle):
    code = edgevid_cli(["verify", str(FIXTURES / bundle), "--checkpoint", str(checkpoint(tmp_path, "foreign"))])
    err = capsys.readouterr().err
    assert code == CheckpointError.exit_code, err
    assert "is not an edgevid checkpoint; this bundle is %s" % bundle in err, err
    assert "--preset" not in err


def test_another_checkpoint_of_the_right_family_is_named_in_a_warning(tmp_path, caplog):
    import logging

    from edgevid.commands.checkpoints import check_checkpoint_family

    ckpt = checkpoint(tmp_path, "liteeval")

    class Bundle:
        family = "liteeval"
        meta = {"checkpoint": {"file": "model.pt", "sha256": "0" * 64}}

    with caplog.at_level(logging.WARNING, logger="edgevid"):
        check_checkpoint_family(ckpt, Bundle())
    assert "is not the checkpoint this bundle was exported from (model.pt, sha256 000000000000…)" in caplog.text
    caplog.clear()
    from edgevid.fsutil import sha256_file

    Bundle.meta = {"checkpoint": {"file": "liteeval.pt", "sha256": sha256_file(ckpt)}}
    with caplog.at_level(logging.WARNING, logger="edgevid"):
        check_checkpoint_family(ckpt, Bundle())
    assert caplog.text == ""
