"""Pick the fastest from-scratch convolution for a layer's shape.

The rule, in order (``taps = k_h * k_w``, ``C/G`` the input channels per group):

1. ``taps >= 49 * s_h * s_w``: **fft**. FFT time hardly depends on the kernel, while every
   tap-based approach grows with ``taps`` and shrinks with the stride (it computes only the
   kept outputs). Measured against shift_add, stride 1, one thread: FFT was 1.3-2.4x slower
   at k=5 and 1.7-3.5x faster at k=9, for 3->8 channels at 256^2 (43.7 vs 34.3 ms at k=5,
   37.2 vs 65.1 ms at k=9), 64->64 at 56^2 (568 vs 240 ms; 659 vs 1084 ms) and 16->16 at
   56^2 (69 vs 55 ms; 68 vs 237 ms). The crossover lies between 25 and 81 taps; 49 (7x7)
   is the midpoint.
2. ``C/G == 1`` with several groups (depthwise, channel multipliers): **shift_add**, whose
   broadcast multiply-add path has nothing to contract. im2col degenerates into a batched
   matmul of G tiny products there (17x F.conv2d on the depthwise layer, against 2.4x) and
   Winograd into 16 x G of them (14x).
3. One group and either ``C/G * taps <= 32`` (LeNet's ``C_in = 1``) or a stride above 1:
   **im2col**. With few input channels the column matrix is a few copies of the input, and
   with stride it holds only the kept positions; one matmul then writes the output in
   place, where shift_add pays for its phase buffer and the final crop. LeNet conv1: 1.06x
   vs 1.43x (one thread), 1.13x vs 2.04x (two); stride-2 3x3: 1.22x vs 1.27x (one thread),
   0.78-1.46x vs 1.33-2.17x in three two-thread runs.
4. A 3x3 kernel with stride 1 and dilation 1: **winograd**. With two threads it was the
   fastest on the ResNet 3x3 layer (1.50x, 1.61x and 1.85x F.conv2d in three runs, against
   2.43-2.54x for shift_add and 3.4-3.8x for im2col): its transforms are a few large
   elementwise passes and one batched matmul does 2.25x fewer multiplications. (With one
   thread the order flips: 2.3-2.9x against shift_add's 1.5-1.9x.) Its backward is 1.4-2.2x.
5. Otherwise **shift_add**: on the dilated 3x3 layer 2.4x against im2col's 3.7x (two
   threads; 2.1x vs 3.9x with one). On 1x1 layers it is a plain batched matmul on NCHW
   (0.9-1x F.conv2d).

The numbers are ratios to ``F.conv2d`` on the layers of ``benchmarks/conv.py`` measured on
CPU (2-core AMD EPYC, AVX2) while other work shared the machine; the same rule is used on every device.
"""

from __future__ import annotations

import math

from ._args import ConvArgs

FFT_TAPS = 49
IM2COL_DEPTH = 32


def choose(x_shape, weight_shape, args: ConvArgs, device) -> str:
    """The name of the implementation to run for this layer (see the module docstring)."""
    taps = math.prod(args.kernel)
    per_group = weight_shape[1]
    if taps >= FFT_TAPS * math.prod(args.stride):
        return "fft"
    if per_group == 1 and args.groups > 1:
        return "shift_add"
    if args.groups == 1 and (per_group * taps <= IM2COL_DEPTH or args.stride != (1, 1)):
        return "im2col"
    if args.kernel == (3, 3) and args.stride == (1, 1) and args.dilation == (1, 1):
        return "winograd"
    return "shift_add"
