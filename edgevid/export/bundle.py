"""``export_bundle``: a trained LiteEval → a bundle folder with four graphs and ``bundle.json``;
``write_bundle``: the writer every family shares.

Everything is written into a temporary folder beside ``out_dir``; the folder is validated with
:func:`edgevid.bundle.load_bundle` (schema, files, sha256) and renamed into place only when all of
it succeeded, so a failed or interrupted export leaves nothing behind.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

from .. import families
from .._version import __version__
from .._optional import require
from ..bundle import MANIFEST, Bundle, load_bundle
from ..errors import ConfigError, ExportError
from ..families import liteeval as liteeval_rules
from ..families.settings import merge_policy
from ..fsutil import atomic_dir, sha256_file
from ..log import get_logger
from ..spec import GraphSpec, PreprocessSpec
from .liteeval import liteeval_roles
from .roles import RoleGraph
from .onnx import OPSET, export_onnx

log = get_logger(__name__)

POLICY_DEFAULTS = liteeval_rules.POLICY_DEFAULTS

Progress = Callable[[int, int, str], None]


def export_bundle(model, out_dir: Union[str, Path], *, labels: Optional[Sequence[str]],
                  policy: Optional[Mapping[str, Any]] = None, checkpoint_info: Optional[Mapping[str, Any]] = None,
                  overwrite: bool = False, progress: Optional[Progress] = None, simplify: bool = True,
                  flow: Optional[Mapping[str, Any]] = None) -> Bundle:
    """Export a :class:`~edgevid.models.liteeval.LiteEval` as a bundle folder at ``out_dir``.

    - ``labels``: one name per class (``None`` takes ``model.config.labels``).
    - ``policy``: overrides of :data:`POLICY_DEFAULTS` (unknown keys are refused).
    - ``checkpoint_info``: JSON-able provenance stored as ``bundle.json["checkpoint"]``.
    - ``overwrite``: replace an existing bundle folder (an existing folder that is neither empty nor
      a bundle is never replaced).
    - ``progress(done, total, what)``: called before each graph and once when done.
    - ``flow``: the flow settings of a model trained on optical-flow images (FlowSpec.to_dict(); the checkpoint's
      ``flow``), kept as ``preprocess.flow`` so that the runtime makes the same images; None for colour.

    Returns the :class:`Bundle` as loaded back from ``out_dir``.
    """
    cfg = getattr(model, "config", None)
    roles = liteeval_roles(model)  # refuses anything that is not a LiteEval
    labels = check_labels(cfg, labels)
    model_entry = dict(cfg.to_dict(), labels=list(labels), coarse_feat=cfg.coarse_feat,
                       fine_feat=cfg.fine_feat, fine_proj_dim=cfg.fine_proj_dim)
    return write_bundle(out_dir, family="liteeval", roles=roles, labels=labels,
                        preprocess=liteeval_rules.preprocess_spec(),
                        policy=_policy(policy), model_entry=model_entry, checkpoint_info=checkpoint_info,
                        overwrite=overwrite, progress=progress, simplify=simplify, flow=flow)


def write_bundle(out_dir: Union[str, Path], *, family: str, roles: Mapping[str, RoleGraph], labels: Sequence[str],
                 preprocess: PreprocessSpec, policy: Mapping[str, Any], model_entry: Mapping[str, Any],
                 checkpoint_info: Optional[Mapping[str, Any]] = None, overwrite: bool = False,
                 progress: Optional[Progress] = None, simplify: bool = True,
                 flow: Optional[Mapping[str, Any]] = None) -> Bundle:
    """Export every role with :func:`export_onnx` into a temporary folder, write ``bundle.json``,
    validate it as the device would, and rename the folder to ``out_dir``. Shared by all families.
    ``flow``: a flow model's flow settings, validated and kept as ``preprocess.flow`` (None: colour).

    Each graph is hashed once, when written: the finished folder is checked as a device would (schema,
    files, paths) without hashing them again, and it is not read again after the rename."""
    rules = families.get(family, ConfigError)
    out = Path(out_dir)
    _check_target(out, overwrite)
    if flow is not None:
        from ..data.flow import FlowSpec

        preprocess = dataclasses.replace(preprocess, flow=FlowSpec.from_dict(dict(flow)).to_dict())
    torch, onnx = require("torch", "bundle export"), require("onnx", "bundle export")
    onnxsim = require("onnxsim", "bundle export")

    total = len(roles) + 1
    graphs: Dict[str, GraphSpec] = {}
    try:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            for i, (role, rg) in enumerate(roles.items()):
                if progress:
                    progress(i, total, "exporting %s" % role)
                file = role + ".onnx"
                inputs, outputs = export_onnx(rg.module, rg.example_inputs, rg.output_names, tmp / file,
                                              simplify=simplify, role=role)
                extra = dict(rg.extra, quantizable=rules.precision_rule(role).allows("int8"),
                             precision_note=rules.precision_notes()[role])
                names = {t.name for t in inputs}
                state = {link.input: ["%s.%s" % src for src in link.sources] for link in rules.state
                         if link.role == role and link.input in names}
                if state:
                    extra["state"] = state  # which output feeds each state input at the next step
                graphs[role] = GraphSpec(role=role, file=file, sha256=sha256_file(tmp / file), inputs=inputs,
                                         outputs=outputs, gmacs=float("%.6g" % rg.gmacs()), extra=extra)
            if progress:
                progress(len(roles), total, "writing %s" % MANIFEST)
            meta: Dict[str, Any] = {"exporter": {
                "edgevid": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxsim": getattr(onnxsim, "__version__", "?"), "opset": OPSET}}
            if checkpoint_info is not None:
                meta["checkpoint"] = dict(checkpoint_info)
            bundle = Bundle(root=tmp, family=family, labels=list(labels), graphs=graphs, preprocess=preprocess,
                            policy=dict(policy), model=dict(model_entry), meta=meta)
            bundle.save()
            # what the device will do: schema, presence, paths; not the sha256, computed from these very files
            load_bundle(tmp, verify=False)
    except FileExistsError as e:  # someone else created out_dir while we exported
        raise ExportError("bundle folder %s appeared during the export" % out, str(e),
                          "choose another folder or pass overwrite=True") from e
    except OSError as e:
        raise ExportError("cannot write the bundle %s" % out, str(e), "check the folder is writable and has space") from e
    if progress:
        progress(total, total, "done")
    log.info("bundle written to %s (%s)", out, ", ".join(graphs))
    return load_bundle(out, verify=False)  # the files were hashed and checked in the temporary folder


def check_labels(cfg, labels) -> list:
    """``labels`` (or the config's) as strings, one per class of ``cfg.num_classes``."""
    labels = list(cfg.labels if labels is None else labels)
    if not labels:
        raise ConfigError("no class labels for the bundle", "neither labels= nor the model config has them",
                          "pass labels=[…] with one name per class")
    if len(labels) != cfg.num_classes:
        raise ConfigError("%d labels for a model with %d classes" % (len(labels), cfg.num_classes), None,
                          "pass one label per class, in class-index order")
    return [str(x) for x in labels]


def _policy(policy) -> Dict[str, Any]:
    merged = merge_policy(POLICY_DEFAULTS, policy)
    checked = liteeval_rules.FAMILY.check_policy(merged)  # ConfigError for a bad value
    # stream-only options (the bench's gate="fine") are the runtime's, never written into a bundle
    merged.update({k: v for k, v in checked.items() if k in merged})
    return merged


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise ExportError("bundle folder %s already exists" % out, "export never replaces a folder unless told",
                          "choose another folder or pass overwrite=True (--overwrite)")
    if not out.is_dir():
        raise ExportError("%s exists and is not a folder" % out, "a bundle is a folder", "choose another path")
    if any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ExportError("%s is not empty and holds no %s" % (out, MANIFEST),
                          "overwrite only replaces a previous bundle, never another folder",
                          "choose an empty or new folder")

