"""Families on TensorRT engines with the tensors between their graphs kept on the GPU (docs/architecture.md §3.5).

Modules: ``plan`` (:class:`Op`, the plain-data plan every family's device path is made of, and ``hazards``,
its race check without CUDA), ``executor`` (``DeviceExecutor`` runs ops over ``TrtSession.enqueue``; the
``FeatureRing`` of features a CNN stage leaves on the device), ``liteeval`` (the gated chain: features and
state on the device, ``GatedStages`` switches to it), ``prernn`` (the recurrent step's state, and the
backbone's output when it is an engine too, on the device; ``RecurrentStages`` switches to it). The modules
import no CUDA: pycuda and TensorRT are imported when an executor prepares.
"""
