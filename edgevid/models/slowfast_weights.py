"""SlowFast weights: PyTorchVideo and PySlowFast state dicts, and edgevid's own checkpoints (docs/models.md §3.8).

Foreign names are translated by a static table (:data:`STEM`, :data:`FUSION`, :data:`BLOCK`,
:data:`HEAD`): each edgevid module maps to exactly one PyTorchVideo and one PySlowFast module,
expanded for the model's own stages and blocks. A foreign key outside the expanded table is
"unexpected", a table entry the file lacks is "missing", and every tensor shape is compared before
anything is copied. When keys or shapes disagree, the error says which preset and class count the
file looks like. Pathway 0 is slow, 1 is fast, in all three layouts.

edgevid checkpoint (:data:`CHECKPOINT_FORMAT`), readable with ``weights_only=True``::

    {"format": "edgevid.slowfast/1", "config": asdict(SlowFastConfig), "state_dict": {...}, "labels": [...]}

Training checkpoints of :func:`edgevid.train.slowfast.train_slowfast` (the loop's format
``edgevid.train/1`` with ``family: "slowfast"``, config under ``config.model``, weights under
``model``) load the same way.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..errors import CheckpointError, ConfigError
from ..fsutil import atomic_path
from ..log import get_logger
from .backbones import few_keys
from .checkpoint import FORMAT as TRAIN_FORMAT, checkpoint_family, read_checkpoint
from .slowfast import SlowFast, create_slowfast, create_slowfast_preset
from .slowfast_config import PRESETS, SlowFastConfig

log = get_logger(__name__)

CHECKPOINT_FORMAT = "edgevid.slowfast/1"
LAYOUTS = ("edgevid", "pytorchvideo", "pyslowfast")

# (edgevid, PyTorchVideo, PySlowFast) module names. {p} pathway; {s} edgevid stage 0..3 (res2..res5);
# {b} PyTorchVideo block of that stage (s + 1); {f} PySlowFast fuse index (s + 1); {r} PySlowFast stage (s + 2).
STEM = (("stems.{p}.conv", "blocks.0.multipathway_blocks.{p}.conv", "s1.pathway{p}_stem.conv"),
        ("stems.{p}.bn", "blocks.0.multipathway_blocks.{p}.norm", "s1.pathway{p}_stem.bn"))
FUSION = (("fusions.{s}.conv", "blocks.{s}.multipathway_fusion.conv_fast_to_slow", "s{f}_fuse.conv_f2s"),
          ("fusions.{s}.bn", "blocks.{s}.multipathway_fusion.norm", "s{f}_fuse.bn"))
BLOCK_PREFIX = ("stages.{s}.{p}.{i}", "blocks.{b}.multipathway_blocks.{p}.res_blocks.{i}", "s{r}.pathway{p}_res{i}")
BLOCK = (("shortcut_conv", "branch1_conv", "branch1"), ("shortcut_bn", "branch1_norm", "branch1_bn"),
         ("conv_a", "branch2.conv_a", "branch2.a"), ("bn_a", "branch2.norm_a", "branch2.a_bn"),
         ("conv_b", "branch2.conv_b", "branch2.b"), ("bn_b", "branch2.norm_b", "branch2.b_bn"),
         ("conv_c", "branch2.conv_c", "branch2.c"), ("bn_c", "branch2.norm_c", "branch2.c_bn"))
HEAD = (("head.proj", "blocks.6.proj", "head.projection"),)

# Keys that tell the layouts apart (first match wins).
_SIGNATURES = (("pytorchvideo", "blocks.0.multipathway_blocks.0.conv.weight"),
               ("pyslowfast", "s1.pathway0_stem.conv.weight"), ("edgevid", "stems.0.conv.weight"))
_BN_COUNTER = "num_batches_tracked"  # training bookkeeping; files converted from Caffe2 lack it


def module_table(model: SlowFast, layout: str) -> Dict[str, str]:
    """edgevid module name → module name in ``layout``, for every module of ``model`` that holds weights."""
    if layout not in LAYOUTS:
        raise ConfigError("unknown weight layout %r" % (layout,), None, "choose from " + ", ".join(LAYOUTS))
    col = LAYOUTS.index(layout)
    table: Dict[str, str] = {}
    for p in range(2):
        table.update((row[0].format(p=p), row[col].format(p=p)) for row in STEM)
    for s, stage in enumerate(model.stages):
        table.update((row[0].format(s=s), row[col].format(s=s, f=s + 1)) for row in FUSION)
        for p in range(2):
            for i, block in enumerate(stage[p]):
                names = dict(s=s, p=p, i=i, b=s + 1, r=s + 2)
                ours, theirs = BLOCK_PREFIX[0].format(**names), BLOCK_PREFIX[col].format(**names)
                table.update((ours + "." + row[0], theirs + "." + row[col]) for row in BLOCK
                             if getattr(block, row[0]) is not None)  # only first blocks have a shortcut
    table.update((row[0], row[col]) for row in HEAD)
    return table


def key_map(model: SlowFast, layout: str) -> Dict[str, str]:
    """edgevid state-dict key → key in ``layout``."""
    table = module_table(model, layout)
    out = {}
    for key in model.state_dict():
        module, _, param = key.rpartition(".")
        if module not in table:  # a module the table does not describe: a bug here, not a user error
            raise RuntimeError("SlowFast module %s has no entry in the weight name table" % module)
        out[key] = table[module] + "." + param
    return out


# ---------------------------------------------------------------------------------------------
def load_slowfast_weights(model: SlowFast, source: Union[str, Path, Mapping[str, Any]], *,
                          name: Optional[str] = None, replace_head: bool = False) -> str:
    """Copy weights from a file or state dict into ``model``; return the layout that was found.

    ``source``: an edgevid checkpoint, a PyTorchVideo ``slowfast_r50``/``slowfast_r101`` state dict,
    a PySlowFast checkpoint (``model_state``), or a path to any of them (read with ``weights_only=True``).
    ``name`` says where a state dict came from in messages. ``replace_head=True`` (fine-tuning) keeps
    the model's own classifier when the file's has another class count; everything else must fit.
    Raises :class:`CheckpointError` listing missing, unexpected and mis-shaped keys, and the preset
    the file looks like.
    """
    name = name or (str(source) if isinstance(source, (str, Path)) else "the given state dict")
    state = _unwrap(read_checkpoint(source) if isinstance(source, (str, Path)) else source, name)
    layout = detect_layout(state, name)
    mapping = key_map(model, layout)
    own = model.state_dict()
    if replace_head:
        head = {mapping[k] for k in own if k.startswith(HEAD[0][0] + ".")}
        if any(k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[o].shape)
               for o, k in mapping.items() if k in head):
            log.info("%s has another class count: its classifier is replaced by a fresh %d-class one",
                     name, model.config.num_classes)
            state = {k: v for k, v in state.items() if k not in head}
            own_head = {o for o, k in mapping.items() if k in head}
            state.update((mapping[o], own[o]) for o in own_head)
    missing = [mapping[k] for k in own if mapping[k] not in state and not k.endswith(_BN_COUNTER)]
    unexpected = sorted(set(state) - set(mapping.values()))
    shapes = ["%s %s vs %s" % (mapping[k], tuple(state[mapping[k]].shape), tuple(v.shape)) for k, v in own.items()
              if mapping[k] in state and tuple(getattr(state[mapping[k]], "shape", ())) != tuple(v.shape)]
    if missing or unexpected or shapes:
        why = "; ".join("%s %s" % (what, few_keys(keys)) for what, keys in (
            ("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)) if keys)
        raise CheckpointError("%s (%s layout) does not fit this SlowFast (%s)" % (name, layout, _summary(model.config)),
                              why, "the file looks like %s" % guess_preset(state, layout))
    new = {k: state[mapping[k]] if mapping[k] in state else v for k, v in own.items()}
    model.load_state_dict(new, strict=True)
    log.info("loaded %d SlowFast tensors from %s (%s layout)", len(new), name, layout)
    return layout


def detect_layout(state: Mapping[str, Any], name: str = "state dict") -> str:
    for layout, key in _SIGNATURES:
        if key in state:
            return layout
    raise CheckpointError("%s is not a SlowFast state dict" % name,
                          "none of its keys is a SlowFast stem (first keys: %s)" % few_keys(sorted(state), 3),
                          "pass a PyTorchVideo slowfast_r50/r101 or PySlowFast SlowFast file, or an edgevid checkpoint")


def _unwrap(ckpt: Mapping[str, Any], name: str) -> Dict[str, Any]:
    """The state dict inside a checkpoint: edgevid ``state_dict``, PySlowFast/PyTorchVideo hub ``model_state``."""
    if not isinstance(ckpt, Mapping):
        raise CheckpointError("%s holds a %s, not a dict" % (name, type(ckpt).__name__), None,
                              "pass a state dict or a checkpoint file")
    if ckpt.get("format") == TRAIN_FORMAT and isinstance(ckpt.get("model"), Mapping):
        ckpt = {"state_dict": ckpt["model"]}  # a training checkpoint of edgevid's loop
    for wrapper in ("state_dict", "model_state"):
        if isinstance(ckpt.get(wrapper), Mapping):
            ckpt = ckpt[wrapper]
            break
    state = dict(ckpt)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def guess_preset(state: Mapping[str, Any], layout: str) -> str:
    """Words naming the preset and class count that ``state`` (in ``layout``) was most likely saved from."""
    col = LAYOUTS.index(layout)
    prefix = BLOCK_PREFIX[col].replace(".{i}", "").format(s=2, p=0, b=3, r=4)  # slow res4: tells R50 from R101
    res4 = {m.group(1) for k in state for m in [re.match(re.escape(prefix) + r"\.(\d+)\.", k)] if m}
    head = state.get(HEAD[0][col] + ".weight")
    fusion = state.get(FUSION[0][col].format(s=0, f=1) + ".weight")
    classes = int(head.shape[0]) if hasattr(head, "shape") else None
    kernel = int(fusion.shape[2]) if hasattr(fusion, "shape") and len(fusion.shape) == 5 else None
    depth = {6: 50, 23: 101}.get(len(res4))
    names = [n for n, p in PRESETS.items() if p.get("depth") == depth and p.get("fusion_kernel") == kernel
             and "stage_blocks" not in p]
    found = "depth %s (%d res4 blocks), fusion kernel %s, %s classes" % (depth or "?", len(res4), kernel, classes)
    if names:
        return "%s: use preset %s with num_classes=%s" % (found, " or ".join(names), classes)
    return found + ": no preset matches; build it with create_slowfast(...) and those settings"


def _summary(c: SlowFastConfig) -> str:
    return "depth %d, blocks %s, fusion kernel %d, %d classes" % (c.depth, list(c.blocks), c.fusion_kernel, c.num_classes)


# ---------------------------------------------------------------------------------------------
# edgevid checkpoints
def save_slowfast_checkpoint(model: SlowFast, path: Union[str, Path], *, labels: Optional[Sequence[str]] = None,
                             extra: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``model`` as an edgevid SlowFast checkpoint (atomic; loadable with ``weights_only=True``)."""
    labels = list(model.config.labels if labels is None else labels)
    if labels and len(labels) != model.config.num_classes:
        raise ConfigError("%d labels for a SlowFast with %d classes" % (len(labels), model.config.num_classes), None,
                          "pass one label per class")
    ckpt = {"format": CHECKPOINT_FORMAT, "config": model.config.to_dict(), "labels": [str(x) for x in labels],
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    ckpt.update(extra or {})
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, str(tmp))
    return path


def load_slowfast_checkpoint(path: Union[str, Path], *, preset: Optional[str] = None,
                             num_classes: Optional[int] = None,
                             labels: Optional[Sequence[str]] = None) -> Tuple[SlowFast, List[str]]:
    """A SlowFast in eval mode and its labels, from an edgevid checkpoint or (with ``preset``) a foreign file.

    For PyTorchVideo/PySlowFast files the class count is read from the head unless ``num_classes`` is given.
    """
    ckpt = read_checkpoint(path)
    trained = ckpt.get("format") == TRAIN_FORMAT and ckpt.get("family") == "slowfast"
    if ckpt.get("format") == CHECKPOINT_FORMAT or trained:
        try:
            config = SlowFastConfig.from_dict(dict(ckpt["config"]["model"] if trained else ckpt["config"]))
        except (KeyError, TypeError, ConfigError) as e:
            raise CheckpointError("the SlowFast configuration in %s is unusable" % path, str(e),
                                  "re-save it with this version of edgevid") from e
        model = create_slowfast(config=config)
        labels = list(labels or ckpt.get("labels") or config.labels)
    else:
        found = checkpoint_family(ckpt)
        if found is not None:
            raise CheckpointError("%s is an edgevid %s checkpoint, not a SlowFast one" % (path, found),
                                  "its family field says %s" % found,
                                  "pass a checkpoint written by 'edgevid train slowfast', or PyTorchVideo/PySlowFast "
                                  "SlowFast weights with their preset")
        if preset is None:
            raise CheckpointError("%s is not an edgevid SlowFast checkpoint" % path,
                                  "it has no edgevid format field, and a foreign weight file carries no architecture "
                                  "settings", "name the preset it was trained with (one of %s; 'edgevid export "
                                  "slowfast --preset P')" % ", ".join(PRESETS))
        state = _unwrap(ckpt, str(path))
        layout = detect_layout(state, str(path))
        head = state.get(HEAD[0][LAYOUTS.index(layout)] + ".weight")
        classes = num_classes or (int(head.shape[0]) if hasattr(head, "shape") else 400)
        model = create_slowfast_preset(preset, num_classes=classes)
        labels = list(labels or [])
    load_slowfast_weights(model, ckpt, name=str(path))
    return model.eval(), [str(x) for x in labels]
