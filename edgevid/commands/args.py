"""Arguments of every verb (light: no heavy import here, so ``--help`` works anywhere)."""
from __future__ import annotations

from typing import Callable, Dict, Tuple

from ..backends.registry import CHOICES as BACKENDS
from ..data.flow import METHODS as FLOW_METHODS
from ..families import NAMES as FAMILIES
from ..models.slowfast_config import PRESETS  # torch-free: the one list of preset names

PRESET_NAMES = tuple(PRESETS)

# verb -> (add_arguments(parser), one-line help), in the order shown by --help
VERBS: Dict[str, Tuple[Callable, str]] = {}


def verb(name: str, help: str) -> Callable:
    """Decorator registering ``add_arguments`` for the verb ``name``."""
    def register(add_arguments: Callable) -> Callable:
        VERBS[name] = (add_arguments, help)
        return add_arguments
    return register


@verb("demo", "End to end on CPU: synthetic data → train → export → stream → report.json (--model liteeval|slowfast|prernn|fusion)")
def demo(p):
    p.add_argument("--model", choices=FAMILIES + ("fusion",), default="liteeval",
                   help="model family, or fusion: colour + optical-flow PreRNNs fused by boost-u (default: liteeval)")
    p.add_argument("--out", default="edgevid-demo", help="output folder (default: ./edgevid-demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for data and training (default: 0)")
    p.add_argument("--precision", choices=("int8", "fp16"),
                   help="also calibrate, quantize and stream at this precision on the CPU (default: FP32 only)")
    p.add_argument("--quick", action="store_true",
                   help="tiny data and schedule: a smoke test of the pipeline (a minute or two); its accuracy is not meaningful")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


@verb("train", "Train a model on a class-folder video data set (root/<class>/<video>), or fusion weights")
def train(p):
    p.add_argument("family", choices=FAMILIES + ("fusion",),
                   help="model family, or fusion: learn late-fusion weights of --member bundles (docs/fusion.md)")
    p.add_argument("--data", required=True, help="training data: root/<class>/<video> (fusion: held-out videos the "
                                                 "weights are learned on)")
    p.add_argument("--val", help="validation data in the same layout (default: hold out --val-split)")
    p.add_argument("--val-split", type=float, default=0.2,
                   help="share of --data held out for validation when no --val is given (default: 0.2)")
    p.add_argument("--out", required=True, help="checkpoint to write (.pt); fusion: the fusion bundle folder")
    p.add_argument("--frames", type=int, default=16,
                   help="liteeval, prernn: steps per video (default: 16; slowfast clips have the preset's frames)")
    p.add_argument("--fps", type=float, default=None,
                   help="liteeval, prernn: sample videos at this rate (default: the file's rate)")
    p.add_argument("--fine-arch", default="resnet101", choices=("resnet18", "resnet34", "resnet50", "resnet101"),
                   help="liteeval: torchvision ResNet used as the fine CNN (default: resnet101)")
    p.add_argument("--coarse-weights", help="liteeval: torchvision MobileNetV2 state dict (.pth) to start from "
                                            "(default: random init)")
    p.add_argument("--fine-weights", help="liteeval: torchvision ResNet state dict (.pth) to start from "
                                          "(default: random init)")
    p.add_argument("--coarse-hidden", type=int, default=512, help="liteeval: coarse LSTM size D^c (default: 512)")
    p.add_argument("--fine-hidden", type=int, default=2048, help="liteeval: fine LSTM size D^f (default: 2048)")
    p.add_argument("--fine-fraction", type=float, default=0.1,
                   help="liteeval: γ, the target share of frames that use the fine CNN (default: 0.1)")
    p.add_argument("--tau-rate", type=float, default=1e-4,
                   help="liteeval: Gumbel temperature τ = max(0.5, exp(-rate·step)); 1e-4 (reference) suits long "
                        "schedules, about 1e-3 a few thousand steps (default: 1e-4)")
    p.add_argument("--epochs", type=int, default=30, help="passes over the training videos (default: 30)")
    p.add_argument("--batch-size", type=int, default=32, help="videos per optimiser step (default: 32)")
    p.add_argument("--lr", type=float, default=1e-4,
                   help="learning rate of the optimiser (Adam; AdamW for slowfast) (default: 1e-4)")
    p.add_argument("--end-to-end", action="store_true",
                   help="liteeval: also train the CNNs (slow) (default: train on cached features)")
    p.add_argument("--resume", help="checkpoint of an interrupted run to resume from")
    p.add_argument("--cache-dir", help="folder where per-frame features (liteeval, prernn) or decoded clips (slowfast) "
                                       "are cached between runs (default: no cache, recomputed every run)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, initial weights and order (default: 0)")
    g = p.add_argument_group("optical flow", "train on flow images instead of colour (seed 000; docs/fusion.md)")
    g.add_argument("--flow", choices=FLOW_METHODS, help="train on OpenCV optical flow between consecutive frames: "
                                                        "dis (fast) or farneback (default: colour frames)")
    g.add_argument("--flow-bound", type=float, default=16.0,
                   help="flow in pixels per frame mapped to the ends of the image range (default: 16)")
    g.add_argument("--flow-size", type=int, default=112,
                   help="short side frames are resized to before the flow (default: 112)")
    g = p.add_argument_group("fusion", "boost-u late fusion of several bundles' scores (seed 000 [0063])")
    g.add_argument("--member", action="append", metavar="[NAME=]BUNDLE",
                   help="a member bundle, named NAME (default: its folder's name); repeat: two or more")
    g.add_argument("--method", choices=("boost-u", "boost-c"), default="boost-u",
                   help="one weight per member (boost-u) or per member and class (boost-c, over-fits) "
                        "(default: boost-u)")
    g.add_argument("--nu", type=float, default=0.5, help="share of held-out videos the margin may miss, in (0, 1] "
                                                          "(default: 0.5)")
    g.add_argument("--fallback", choices=("equal", "error"), default="equal",
                   help="when the linear programme finds no weighting: equal weights (said in the bundle) or an "
                        "error (default: equal)")
    g = p.add_argument_group("prernn", "PreRNN / PreRNN-SIH (docs/models.md §4)")
    g.add_argument("--arch", default="vgg16",
                   help="CNN to convert: small_vgg, vgg11…vgg19(_bn), resnet18…101 (default: vgg16)")
    g.add_argument("--weights", help="prernn: state dict (.pth) of the trained CNN to convert; slowfast: PyTorchVideo, "
                                     "PySlowFast or edgevid weights to start from (default: random init)")
    g.add_argument("--layer", default="fc6",
                   help="layer to convert: fc6/fc7/fc8 (VGG) or layer4 (ResNet) (default: fc6)")
    g.add_argument("--cell", choices=("lstm", "gru", "vrnn"), default="lstm",
                   help="recurrent cell: lstm, gru or vrnn (plain RNN; not with --form sih) (default: lstm)")
    g.add_argument("--form", choices=("sih", "prernn", "traditional"), default="sih",
                   help="sih (shared input drive), prernn (gate-dependent), traditional (RNN on top, baseline) "
                        "(default: sih)")
    g.add_argument("--hidden", type=int, help="traditional form only: hidden size (default: feature size)")
    g.add_argument("--image-size", type=int, default=224, help="square input side (default: 224)")
    g = p.add_argument_group("slowfast", "SlowFast fine-tuning (docs/models.md §3); --weights: PyTorchVideo, "
                                         "PySlowFast or edgevid weights to start from (head replaced for another "
                                         "class count)")
    g.add_argument("--preset", default="r50_8x8", choices=PRESET_NAMES, metavar="PRESET",
                   help="architecture: %s (default: r50_8x8)" % ", ".join(PRESET_NAMES))
    g.add_argument("--train-fps", type=float, default=30.0,
                   help="frame rate the preset's stride refers to; videos are decoded at train-fps / (tau/alpha) "
                        "(default: 30, Kinetics)")
    g.add_argument("--size", type=int, default=224, help="square crop (default: 224)")
    g.add_argument("--resize-short", type=int, default=256, help="short side before cropping (default: 256)")
    g.add_argument("--threads", type=int, help="torch threads while training (default: torch's)")


@verb("analyze-saturation", "Gate saturation of a trained PreRNN checkpoint: keep or revert the layer (JSON + PNG)")
def analyze_saturation(p):
    p.add_argument("--checkpoint", required=True, help="checkpoint written by 'edgevid train prernn'")
    p.add_argument("--data", required=True, help="held-out videos: root/<class>/<video>")
    p.add_argument("--out", required=True, help="folder for saturation.json and saturation.png")
    p.add_argument("--frames", type=int, default=16, help="steps per video, state carried (default: 16)")
    p.add_argument("--batch-size", type=int, default=8, help="videos per forward pass (default: 8)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


@verb("export", "Export a trained checkpoint to a bundle: per-role ONNX graphs + bundle.json")
def export(p):
    p.add_argument("family", choices=FAMILIES, help="model family")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint written by edgevid (slowfast: also PyTorchVideo/PySlowFast weights with --preset)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    p.add_argument("--fine-cap", type=int,
                   help="liteeval policy: at most this many fine calls per --fine-window steps (default: no cap)")
    p.add_argument("--fine-window", type=int, help="liteeval policy: window (steps) of the fine cap")
    g = p.add_argument_group("slowfast")
    g.add_argument("--preset", choices=PRESET_NAMES, metavar="PRESET",
                   help="architecture of a PyTorchVideo/PySlowFast weight file: %s" % ", ".join(PRESET_NAMES))
    g.add_argument("--num-classes", type=int, help="classes of that file (default: read from its head)")
    g.add_argument("--labels", help="text file with one class name per line (default: the checkpoint's)")
    g.add_argument("--size", type=int, help="square crop of the graph, e.g. 224 or 256 (default: the crop an "
                                            "'edgevid train slowfast' checkpoint was trained at, else 224)")
    g.add_argument("--two-input", action="store_true",
                   help="graph inputs 'slow' and 'fast' instead of one 'clip' (default: one input)")
    g = p.add_argument_group("prernn")
    g.add_argument("--reset-every", type=int, metavar="N", help="policy: zero the recurrent state every N steps "
                   "(default: never; use the training sequence length to classify clips as trained)")
    g.add_argument("--scene-cut", type=float, metavar="T", help="policy: zero the state on a scene-cut score (0..1) > T")


@verb("verify", "Parity of a bundle with its PyTorch checkpoint, or of TensorRT engines with ONNX Runtime, on a stream")
def verify(p):
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--checkpoint", help="the checkpoint the bundle was exported from: compare the backend with "
                                        "PyTorch (without it: compare --backend with ONNX Runtime FP32, no torch needed)")
    p.add_argument("--source", default="synthetic", help="frames to compare on (default: synthetic stream)")
    p.add_argument("--frames", type=int, default=300, help="stream steps to compare (default: 300)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="backend to check: ort (ONNX Runtime on CPU), trt (the bundle's TensorRT engines for this "
                        "GPU) or auto, the best installed (default: auto)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"),
                   help="without --checkpoint: the engines' precision (default: what edgevid build makes by default)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


@verb("calibrate", "Record what each graph of a bundle sees in service (calibration feeds for INT8), from a recipe")
def calibrate(p):
    p.add_argument("bundle", help="bundle folder (the feeds are added to it)")
    p.add_argument("--recipe", required=True,
                   help="calibration recipe (JSON): calibration/<family>.json, or your own (calibration/README.md)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend (default: auto)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


@verb("quantize", "INT8 or FP16 graphs for every role the family allows, from the calibration feeds, with a report")
def quantize(p):
    p.add_argument("bundle", help="bundle folder with calibration feeds (edgevid calibrate); the graphs are added to it")
    p.add_argument("--precision", required=True, choices=("int8", "fp16"), help="precision to make")
    p.add_argument("--target", choices=("all", "trt", "cpu"), default="all",
                   help="INT8 form: trt (symmetric Q/DQ TensorRT builds from), cpu (ONNX Runtime's fast u8/s8 form) "
                        "or all (default: all)")
    p.add_argument("--method", choices=("entropy", "percentile", "minmax"),
                   help="INT8 calibration method (default: each form's own: entropy for trt, minmax for cpu)")
    p.add_argument("--role", action="append", dest="roles", metavar="ROLE",
                   help="only this role (repeat for more; default: every role the family allows)")
    p.add_argument("--recipe", help="calibrate with this recipe first (default: use the feeds already in the bundle)")
    p.add_argument("--streams", nargs="+", metavar="SOURCE",
                   help="held-out streams for the report (default: synthetic streams the demo never trains on)")
    p.add_argument("--force", action="store_true", help="also quantize roles the family's rules keep higher")
    p.add_argument("--all-layers-int8", dest="keep_float", action="store_false",
                   help="TensorRT form: quantize every layer even where the calibration streams' top-1 agreement "
                        "misses the target (default: keep the most sensitive layers float, docs/architecture.md §3.6)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


@verb("run", "Stream a source through a bundle and print a prediction per frame")
def run(p):
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--source", required=True,
                   help="video file, camera index or /dev/videoN, rtsp:// or http:// URL, GStreamer pipeline "
                        "(…! appsink), or 'synthetic[:seed=N,segments=N,frames=N,fps=F]'")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend (default: auto)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                   help="run each role at this precision where the family rules allow it, fp32 elsewhere "
                        "(the bundle needs those graphs, or on TensorRT those engines) (default: fp32 on ONNX "
                        "Runtime; on TensorRT what 'edgevid build' makes by default: each role at its family's "
                        "TensorRT default, fp32 where the rules or quantize keep it fp32)")
    p.add_argument("--preprocess", choices=("auto", "cpu", "gpu"), default="auto",
                   help="where frames are resized, cropped and normalized: gpu (libedgevid_preproc feeding the "
                        "TensorRT engines; built with cmake/, an error where it cannot run), cpu (OpenCV), or auto: "
                        "the GPU when every CNN is a TensorRT engine and the library is built (default: auto)")
    p.add_argument("--json", action="store_true", help="print one JSON object per prediction (JSON lines)")
    p.add_argument("--out-video", help="write an annotated video here (.mp4 or .avi)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames (default: the whole source)")
    p.add_argument("--live", action="store_true",
                   help="the source is live whatever it looks like (an HTTP stream ending in .ts, a FIFO): "
                        "reconnect with back-off when it stops instead of ending the run")
    p.add_argument("--retries", type=int, default=5,
                   help="reopen attempts of a live source that stopped, 0.5 s apart and doubling, before the run "
                        "ends with an error (default: 5)")
    p.add_argument("--on-bad-frame", choices=("auto", "skip", "stop"), default="auto",
                   help="a frame a stage refuses (corrupt, wrong shape): skip it (counted in --stats as bad_frames) "
                        "or stop the run; auto: skip on a live source, stop on a file (default: auto)")
    p.add_argument("--loop", action="store_true",
                   help="start a file or synthetic source again when it ends (long runs, soak tests)")
    p.add_argument("--fps", type=float, help="sample the source at this rate (default: the bundle's step rate)")
    p.add_argument("--fine-cap", type=int,
                   help="LiteEval: at most this many fine calls per --fine-window steps (default: the bundle's)")
    p.add_argument("--fine-window", type=int, help="LiteEval: window (steps) of the fine cap (default: the bundle's)")
    p.add_argument("--reset-every", type=int, metavar="N",
                   help="PreRNN: zero the recurrent state every N steps (default: the bundle's max_steps)")
    p.add_argument("--max-gap", type=float, metavar="S",
                   help="PreRNN, SlowFast: start the state (or clip window) afresh when frames are more than S seconds "
                        "apart, e.g. after a camera outage (default: the bundle's policy)")
    p.add_argument("--scene-cut", type=float, metavar="T",
                   help="PreRNN: zero the state when the scene-cut score (0..1) exceeds T (default: the bundle's)")
    p.add_argument("--every", type=int, help="SlowFast: a clip every N frames at the model's spacing (default: bundle policy)")
    p.add_argument("--smooth", type=int, help="SlowFast: average the softmax of the last K clips (default: 1, off)")
    p.add_argument("--pad", choices=("none", "repeat"),
                   help="SlowFast warm-up: wait for a full window (none) or fill it with the first frame (repeat)")
    p.add_argument("--sequential", action="store_true", help="run stages one after another (no threads)")
    p.add_argument("--stats", help="write stream statistics as JSON here")


@verb("info", "Describe a bundle (graphs, I/O, GMACs, policy) or a SlowFast preset (parameters, GMACs, frames)")
def info(p):
    p.add_argument("bundle", metavar="BUNDLE|PRESET", help="bundle folder, or a SlowFast preset name such as r50_8x8")
    p.add_argument("--num-classes", type=int, default=400, help="preset: classes of the head (default: 400)")
    p.add_argument("--size", type=int, default=224, help="preset: square input size for GMACs (default: 224)")
    p.add_argument("--json", action="store_true", help="print as JSON")


@verb("build", "TensorRT engines for a bundle's roles, built on the device (or the trtexec lines that make them)")
def build(p):
    from ..engine_build.plan import CALIBRATIONS, DEFAULT_WORKSPACE_MIB, PRECISIONS  # plain Python: --help stays light

    p.add_argument("bundle", help="bundle folder (the engines are added to it)")
    p.add_argument("--precision", choices=PRECISIONS, default="default",
                   help="default: each role at its family's TensorRT default (CNNs fp16, recurrent steps fp32), "
                        "fp32 where quantize kept it fp32, what 'edgevid run --backend trt' runs without --precision; "
                        "fp32, fp16 or int8 where the family's rules allow it (fp32 elsewhere); best: build the "
                        "candidates, time them on this device and keep per role the fastest the quantize report "
                        "allows (default: default)")
    p.add_argument("--calibration", choices=CALIBRATIONS, default="qdq",
                   help="INT8 from the Q/DQ graph (qdq, every TensorRT), or implicit INT8 where TensorRT still "
                        "has calibrators (8.x, 10.x): from the stored calibration cache (cache) or an on-device "
                        "calibrator over the stored feeds (feeds) (default: qdq)")
    p.add_argument("--dla", type=int, metavar="N",
                   help="build 2D roles for DLA core N with GPU fallback (Jetson AGX Xavier/Orin; refused for "
                        "3D-convolution roles and GPUs without DLA; FP32 roles stay on the GPU) (default: GPU)")
    p.add_argument("--workspace", type=int, default=DEFAULT_WORKSPACE_MIB, metavar="MB",
                   help="builder workspace limit in MiB (default: %d)" % DEFAULT_WORKSPACE_MIB)
    p.add_argument("--role", action="append", dest="roles", metavar="ROLE",
                   help="only this role (repeat for more; default: every role)")
    p.add_argument("--force", action="store_true",
                   help="rebuild engines even when the bundle's are unchanged (default: reuse them)")
    p.add_argument("--print-trtexec", action="store_true",
                   help="print equivalent trtexec command lines instead of building (works without TensorRT "
                        "given --trt-version and --sm)")
    p.add_argument("--trt-version", metavar="VERSION",
                   help="with --print-trtexec: the device's TensorRT, e.g. 8.5.2.2 (default: this machine's)")
    p.add_argument("--sm", metavar="SM", help="with --print-trtexec: the device's GPU, e.g. 72 (Xavier) or 87 "
                                              "(Orin) (default: this machine's)")
    p.add_argument("--json", action="store_true", help="print the build report as JSON")


@verb("bench", "Time a bundle's graphs per backend and precision, end to end on a source, memory; "
               "bench.json + bench.md + plots (docs/bench.md), or --compare two reports")
def bench(p):
    p.add_argument("bundle", nargs="?", help="bundle folder (not with --compare)")
    p.add_argument("--out", help="folder for bench.json, bench.md and the PNG plots (required unless --compare)")
    p.add_argument("--source", default="synthetic",
                   help="frames for the end-to-end measures: as for 'edgevid run --source' (default: synthetic)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="time this backend only; auto: every backend installed and able to run the bundle here "
                        "(default: auto)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"),
                   help="time each role at this precision (fp32 where the family keeps the role off it) "
                        "(default: every precision the bundle holds)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per graph after the warm-up (default: 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs per graph first (default: 5)")
    p.add_argument("--frames", type=int, default=300, help="frames of the end-to-end measures (default: 300)")
    p.add_argument("--checkpoint", help="the checkpoint the bundle was exported from: also time PyTorch eager per "
                                        "role, as the reference (needs torch)")
    p.add_argument("--overwrite", action="store_true", help="write into an --out folder that already holds files")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="print the ratios B / A of two bench reports instead of measuring")
    p.add_argument("--json", action="store_true", help="print the report (or the comparison) as JSON")
