"""The few layers the tiny test models use, in numpy (float64), for references that need no torch."""
from __future__ import annotations

import numpy as np


def f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray = None) -> np.ndarray:
    """torch.nn.Linear: x [N,in] @ weight[out,in].T + bias."""
    y = x @ weight.T
    return y if bias is None else y + bias


def l2norm(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.sqrt((x * x).sum(axis=1, keepdims=True)), 1e-12)


def conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride, padding) -> np.ndarray:
    """torch's Conv2d / Conv3d (groups 1, no dilation): x [N,Cin,*S], weight [Cout,Cin,*K] -> [N,Cout,*S_out].

    ``stride`` and ``padding`` are an int or one per spatial axis."""
    n, cin = x.shape[:2]
    dims = x.ndim - 2
    stride = (stride,) * dims if isinstance(stride, int) else tuple(stride)
    padding = (padding,) * dims if isinstance(padding, int) else tuple(padding)
    kernel = weight.shape[2:]
    x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out_shape = [(x.shape[2 + d] - kernel[d]) // stride[d] + 1 for d in range(dims)]
    # one strided view per kernel offset: columns [N, Cin, K..., S_out...]
    cols = np.empty((n, cin) + tuple(kernel) + tuple(out_shape), x.dtype)
    for offset in np.ndindex(*kernel):
        index = tuple(slice(offset[d], offset[d] + stride[d] * (out_shape[d] - 1) + 1, stride[d]) for d in range(dims))
        cols[(slice(None), slice(None)) + offset] = x[(slice(None), slice(None)) + index]
    axes = list(range(1, 2 + dims))  # Cin and the kernel axes
    y = np.tensordot(cols, weight, axes=(axes, [1] + list(range(2, 2 + dims))))  # [N, S_out..., Cout]
    y = np.moveaxis(y, -1, 1)
    return y + bias.reshape((1, -1) + (1,) * dims)
