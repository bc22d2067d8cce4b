"""Autograd helpers shared by the implementations with a hand-written backward.

A hand-written backward (shift_add's tap GEMMs, Winograd's ``out=`` transforms) computes
first-order gradients without recording a graph. When the caller asks for one
(``create_graph=True``: double backward, gradient penalties, MAML), autograd runs the
backward with grad mode on; :func:`vjp_with_graph` then differentiates the implementation's
own forward, written in differentiable operations, so that the gradients carry a graph.
"""

from __future__ import annotations

import functools

import torch

from ._entry import autocast_off


def without_autocast(backward):
    """An autograd Function's ``backward(ctx, grad)``, run with autocast off on ``grad``'s
    device. A backward called inside ``torch.autocast`` would otherwise round its products to
    half precision (and clash with the float32 work buffers), where the forward accumulated in
    float32 (see :mod:`._entry`)."""

    @functools.wraps(backward)
    def wrapper(ctx, grad):
        with autocast_off(grad.device.type):
            return backward(ctx, grad)

    return wrapper


def vjp_with_graph(forward, inputs, needs, grad) -> tuple:
    """``grad``'s vector-Jacobian product of ``forward(*inputs)``, with a graph for higher orders.

    ``needs`` says which inputs want a gradient (``ctx.needs_input_grad``); the others get None.
    """
    wanted = [t for t, need in zip(inputs, needs) if need]
    with torch.enable_grad():
        out = forward(*inputs)
    got = iter(torch.autograd.grad(out, wanted, grad, create_graph=True, allow_unused=True))
    return tuple(next(got) if need else None for need in needs)


def graph_backward(ctx, forward, inputs, grad) -> tuple:
    """:func:`vjp_with_graph` as an autograd Function's whole backward: ``inputs`` are the
    Function's leading arguments; the arguments after them (not tensors) get None."""
    needs = ctx.needs_input_grad
    return vjp_with_graph(forward, inputs, needs[:len(inputs)], grad) + (None,) * (len(needs) - len(inputs))
