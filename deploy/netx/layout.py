"""Neuron order and convolution geometry of lava-dl netx layers.

netx stores shapes in torch order ``(C, H, W)`` and Lava runs them as ``(x, y, z) = (W, H, C)``
(lava-dl 0.6.0 ``netx/hdf5.py``: ``shape[::-1]``). spikeport numbers a layer's neurons in the C-order
flattening of Lava's ``(x, y, z)``: neuron ``x * H * C + y * C + c``, so a Lava Var of shape
``(x, y, z)`` reshaped with ``reshape(-1)`` lines up with the emulator's group.

A netx ``flatten`` before a dense layer connects ``out.transpose([2, 1, 0]).flatten()``: the dense
layer's input columns are in torch order ``c * H * W + y * W + x``; :func:`torch_to_lava_order`
permutes them into spikeport's order.

A netx ``conv`` runs Lava's ``Conv``: netx flips the kernel and Lava's Conv flips it back, so the
layer computes PyTorch's ``conv2d`` (a cross-correlation) of the torch-ordered input with the file's
weight ``[out, in / groups, kH, kW]``: ``out[o, i, j] = sum_{c, p, q} W[o, c, p, q] *
in[g(o) + c, i * sH - pH + p * dH, j * sW - pW + q * dW]`` (zero outside the input).
:func:`conv_matrix` writes that as a ``(n_out, n_in)`` matrix in spikeport's neuron order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spikeport.emulator.errors import UnsupportedError


def lava_index(shape_chw: tuple[int, int, int], c: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """spikeport's neuron index of channel ``c``, row ``y``, column ``x`` of a ``(C, H, W)`` layer."""
    ch, h, _ = shape_chw
    return (x * h + y) * ch + c


def torch_to_lava_order(shape_chw: tuple[int, int, int]) -> np.ndarray:
    """``perm`` with ``perm[torch_index] = lava_index``: column ``k`` of a flattened-input dense
    layer (torch order) is spikeport's input neuron ``perm[k]``."""
    ch, h, w = shape_chw
    c, y, x = np.meshgrid(np.arange(ch), np.arange(h), np.arange(w), indexing="ij")
    return lava_index(shape_chw, c, y, x).reshape(-1)


@dataclass(frozen=True)
class ConvGeometry:
    """A conv layer's geometry in torch order: ``(H, W)`` pairs and the group count."""

    in_shape: tuple[int, int, int]
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        ho = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel[0] - 1) - 1) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - self.dilation[1] * (self.kernel[1] - 1) - 1) // self.stride[1] + 1
        return (self.out_channels, int(ho), int(wo))

    def taps(self) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per kernel tap ``(p, q)``: ``(p, q, o, c_in_group, rows, cols)`` of the valid connections."""
        ch = self.in_shape[0]
        co, ho, wo = self.out_shape
        cg, og = ch // self.groups, co // self.groups
        o, c, i, j = np.meshgrid(np.arange(co), np.arange(cg), np.arange(ho), np.arange(wo), indexing="ij")
        cin = (o // og) * cg + c
        out = []
        for p in range(self.kernel[0]):
            for q in range(self.kernel[1]):
                y = i * self.stride[0] - self.padding[0] + p * self.dilation[0]
                x = j * self.stride[1] - self.padding[1] + q * self.dilation[1]
                ok = (y >= 0) & (y < self.in_shape[1]) & (x >= 0) & (x < self.in_shape[2])
                rows = lava_index(self.out_shape, o[ok], i[ok], j[ok])
                cols = lava_index(self.in_shape, cin[ok], y[ok], x[ok])
                out.append((p, q, o[ok], c[ok], rows, cols))
        return out

    def check(self, layer: str) -> None:
        ch, co = self.in_shape[0], self.out_channels
        if self.groups < 1 or ch % self.groups or co % self.groups:
            raise UnsupportedError(f"{layer}: groups={self.groups} must divide {ch} in and {co} out channels")
        if min(self.out_shape[1:]) < 1:
            raise UnsupportedError(f"{layer}: conv output {self.out_shape} is empty")


def conv_matrix(geo: ConvGeometry, weight: np.ndarray) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of a conv layer with torch weight ``[out, in / groups, kH, kW]``."""
    n_out, n_in = int(np.prod(geo.out_shape)), int(np.prod(geo.in_shape))
    m = np.zeros((n_out, n_in), np.int64)
    w = np.asarray(weight, np.int64)
    for p, q, o, c, rows, cols in geo.taps():
        m[rows, cols] = w[o, c, p, q]
    return m


def conv_kernel(geo: ConvGeometry, matrix: np.ndarray, layer: str) -> np.ndarray:
    """The torch kernel whose :func:`conv_matrix` is ``matrix``; ``UnsupportedError`` if none is
    (a tap never used by any output position reads as 0)."""
    ch, co = geo.in_shape[0], geo.out_channels
    w = np.zeros((co, ch // geo.groups, *geo.kernel), np.int64)
    for p, q, o, c, rows, cols in geo.taps():
        w[o, c, p, q] = np.asarray(matrix)[rows, cols]
    if not np.array_equal(conv_matrix(geo, w), matrix):
        raise UnsupportedError(f"{layer}: the weights are not those of the recorded convolution {geo}")
    return w
