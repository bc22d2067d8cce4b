"""Every rule shapecheck knows: one stable code each, in one table."""

from __future__ import annotations

from ..diagnostics import Rule, Severity

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO

_RULES = [
    Rule("SC101", "linear-in-features", E, "A Linear layer's in_features differs from the features it receives.",
         "nn.Linear(in_features, out_features) multiplies the last dimension of its input by an "
         "in_features×out_features matrix, so that dimension must equal in_features. After a flatten it is "
         "C×H×W of the last feature map, which depends on every conv and pool before it.\n"
         "Example:  nn.Linear(16 * 5 * 5, 120) after a 16×6×6 feature map (576 features).\n"
         "Use instead:  nn.Linear(16 * 6 * 6, 120), or nn.LazyLinear(120)."),
    Rule("SC102", "conv-in-channels", E, "A convolution's in_channels differs from the channels it receives.",
         "nn.ConvNd(in_channels, ...) needs an input whose channel dimension (dim 1, or dim 0 unbatched) "
         "equals in_channels: the previous layer's out_channels, or the image's channels (1 for grey, 3 for RGB)."),
    Rule("SC103", "norm-num-features", E, "A normalisation layer's size differs from its input.",
         "BatchNorm's num_features and GroupNorm's num_channels must equal the channel dimension; LayerNorm's "
         "normalized_shape must equal the trailing dimensions of its input."),
    Rule("SC104", "rnn-input-size", E, "A recurrent layer's input_size differs from the features it receives.",
         "nn.RNN/LSTM/GRU(input_size, hidden_size) read (batch, seq, input_size) with batch_first=True, else "
         "(seq, batch, input_size): the last dimension must equal input_size."),
    Rule("SC105", "attention-embed-dim", E, "An attention layer's embed_dim differs from its input.",
         "nn.MultiheadAttention(embed_dim, num_heads) needs query, key and value whose last dimension is embed_dim."),
    Rule("SC106", "layer-input-size", E, "A layer's declared input size differs from what it receives.",
         "The layer was built for one input size and receives another."),
    Rule("SC107", "missing-flatten", E, "A Linear layer receives an unflattened feature map.",
         "nn.Linear works on the last dimension only. A Linear whose in_features is the C×H×W of the map it "
         "receives was meant for that map flattened per sample; changing in_features to W instead would run "
         "and give an N×C×H×out tensor.\n"
         "Example:  self.fc(x) with x of shape N×16×6×6 and nn.Linear(16 * 6 * 6, 120).\n"
         "Use instead:  self.fc(torch.flatten(x, 1)), or x.view(x.size(0), -1)."),
    Rule("SC110", "kernel-too-large", E, "A convolution or pooling window is larger than what is left of the input.",
         "Each unpadded convolution shrinks the image by dilation·(kernel−1) and each pool divides it; after "
         "enough of them the window no longer fits. Use a larger input, padding, or fewer downsampling steps."),
    Rule("SC111", "transposed-conv-mirror", W, "A transposed convolution does not give back its encoder's size.",
         "A stride-s convolution floors: sizes 2h and 2h+1 (stride 2) both become h. The transposed convolution "
         "that mirrors it can only return one of them; output_padding (less than the stride) picks the larger. "
         "Without it the decoder comes back one pixel short: 28→14→7 returns 7→13→25, and the output no longer "
         "matches the image it should reconstruct. Too little padding makes it too large instead (7→16): each "
         "unit of padding takes 2 off.\n"
         "Example:  nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1) mirroring a 14→7 convolution gives 13.\n"
         "Use instead:  nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1)."),
    Rule("SC120", "input-dtype", E, "A layer receives the wrong kind of tensor.",
         "nn.Embedding looks up integer token ids (int64); it cannot take floating-point input."),
    Rule("SC130", "no-input-fits", E, "No input size at all makes the model run.",
         "With no input shape given, shapecheck infers the input from the first layer and solves for the sizes "
         "every later layer accepts. None does: a layer's declared size can never be reached."),
    Rule("SC201", "reshape-size", E, "A view/reshape asks for a shape that cannot hold the tensor.",
         "view and reshape keep the number of elements: the product of the new sizes must equal the old one. "
         "To flatten per sample, use x.view(x.size(0), -1) or torch.flatten(x, 1)."),
    Rule("SC208", "view-strides", E, "view is called on a tensor whose memory is not laid out in that order.",
         "x.view(...) never copies: it only reinterprets the memory, so it needs the dimensions it merges to sit "
         "next to each other in memory. After permute, transpose, expand or a slice they do not, and torch "
         "raises \"view size is not compatible with input tensor's size and stride\" (a batch of one hides it, "
         "as its dimension of size 1 has no stride to check). Use x.reshape(...), which copies when it must, "
         "or x.contiguous().view(...).\n"
         "Example:  z = mu.repeat(5, 1, 1).permute(1, 0, 2); z.view(-1, 10)\n"
         "Use instead:  z.reshape(-1, 10)."),
    Rule("SC202", "batch-mixed", E, "A reshape changes the batch size: samples are mixed into features.",
         "x.view(-1, K) with a wrong K runs whenever the element count divides, but the first dimension is no "
         "longer the batch: rows now straddle samples and the loss is computed on garbage. "
         "Use x.view(x.size(0), -1) or torch.flatten(x, 1)."),
    Rule("SC203", "batch-hardcoded", W, "A reshape hard-codes the batch size.",
         "x.view(16, -1) works only while every batch has 16 samples; the last, smaller batch of an epoch and "
         "any evaluation batch break. Use x.size(0)."),
    Rule("SC204", "batch-as-sequence", E, "A recurrent or attention layer runs along the batch.",
         "nn.RNN/LSTM/GRU, nn.MultiheadAttention and the nn.Transformer layers read (seq, batch, features) "
         "unless built with batch_first=True. Given (batch, seq, features) they run without an error, but "
         "treat the samples as time steps and the steps as the batch: every output mixes samples.\n"
         "Example:  nn.LSTM(32, 64) called on x of shape N×20×32.\n"
         "Use instead:  nn.LSTM(32, 64, batch_first=True), or x.transpose(0, 1) before the call."),
    Rule("SC207", "sequence-axis-unknown", W, "A recurrent or attention layer may run along the batch.",
         "A layer without batch_first=True reads (seq, batch, features). shapecheck reads a stated input "
         "as batch first, so its dim 0 reaches the layer as the sequence. But the model's output fits a "
         "time-major input, (seq, batch, features), which is right for this layer: it keeps both leading "
         "axes (one row per step and sample), or has one row per index of dim 1 and none per index of "
         "dim 0 (out[-1]). If dim 0 of your input is the batch, build the layer with batch_first=True; if "
         "it is the sequence, nothing is wrong. An output that keeps dim 0 and drops the steps (h[:, -1]), "
         "another layer of the model built batch first, or inputs that share only dim 0 make it SC204.\n"
         "Example:  # shapecheck: input=(35, 20, 32) before a model running nn.LSTM(32, 64) and "
         "returning one output per step.\n"
         "Use instead:  nn.LSTM(32, 64, batch_first=True) if 35 is the batch."),
    Rule("SC205", "rows-cut-across", E, "A reshape makes rows that cut across dimensions.",
         "x.view(-1, k) runs whenever k divides the element count. When k is not the size of trailing "
         "dimensions (W, H×W, C×H×W, or the last dimension of a sequence), each row holds part of one "
         "dimension and part of the next: after a pool that leaves a 2×2 map, view(-1, C) gives 4N rows, each "
         "mixing channels and positions. Per-pixel rows (x.permute(0, 2, 3, 1).reshape(-1, C)) and per-token "
         "rows (reshape(-1, E) on N×T×E) are whole units and fine.\n"
         "Use instead:  torch.flatten(x, 1) for one row per sample."),
    Rule("SC206", "output-batch", W, "The model's output has a different number of rows than its input has samples.",
         "x.view(-1, k) with k the size of a channel's map (H×W) runs and keeps every value of a sample "
         "together, but gives one row per channel: C·N rows for a batch of N. The layers after it then work "
         "on each channel alone, and the output no longer has one row per sample, so a loss against the N "
         "targets fails or compares the wrong rows. Per-pixel rows (x.permute(0, 2, 3, 1).reshape(-1, C)) "
         "and per-token rows (reshape(-1, E) on N×T×E) hold one position's features and are fine. When the "
         "reshape's rows cut across dimensions or mix samples, SC205 or SC202 reports it instead.\n"
         "Example:  x.view(-1, 16) on an N×16×4×4 map, then nn.Linear(16, 10): the output is 16N×10.\n"
         "Use instead:  x.view(x.size(0), -1) and nn.Linear(16 * 4 * 4, 10)."),
    Rule("SC301", "cat-mismatch", E, "torch.cat/stack of tensors whose other dimensions differ.",
         "All tensors given to torch.cat must have the same size in every dimension except the one joined. "
         "In U-Nets, an odd size floored by a pool comes back one pixel short after upsampling."),
    Rule("SC401", "loss-shape", E, "A loss gets an input and a target whose shapes cannot work together.",
         "Losses compare predictions with targets element by element (MSE, L1, BCE) or take class indices "
         "shaped like the input without its class dimension (cross entropy, NLL)."),
    Rule("SC402", "loss-broadcast", E, "A loss broadcasts its input against its target: it runs, but is wrong.",
         "An input of shape (N, 1) against a target of shape (N,) broadcasts to (N, N): every prediction is "
         "compared with every target. torch only warns. Squeeze the input or unsqueeze the target."),
    Rule("SC501", "layer-error", E, "A layer raised a shape error.", "torch rejected the call; the message says why."),
    Rule("SC502", "op-error", E, "An operation in forward raised a shape error.",
         "torch rejected the call; the message says why."),
    Rule("SC503", "forward-error", E, "The forward pass raised an error.",
         "An error was raised in forward where shapecheck could not tie it to one layer or call; the message says why."),
    Rule("SC901", "syntax-error", E, "The file is not valid Python.", "Fix the syntax error first."),
    Rule("SC902", "load-error", E, "The file could not be loaded.",
         "An import at the top of the file failed, so its models cannot be built."),
    Rule("SC903", "needs-input-shape", I, "A model was not checked: no input shape is known.",
         "Give one with --input, a '# shapecheck: input=(...)' comment on the line before the class, or "
         "[tool.shapecheck] inputs in pyproject.toml."),
    Rule("SC904", "needs-constructor-args", I, "A model was not checked: its constructor needs arguments.",
         "Pass them with --init NAME=VALUE."),
    Rule("SC905", "build-error", E, "A model's constructor raised an error.",
         "Building the model failed before any input was seen; the message says why."),
    Rule("SC906", "unsupported", I, "Part of the forward pass could not be checked.",
         "Fake tensors carry shapes, not values: code that branches on tensor values, or an operator without a "
         "meta kernel, stops the check there. What ran before is reported."),
    Rule("SC907", "import-missing", W, "A top-level import fails where shapecheck runs.",
         "The package is not installed in this environment. shapecheck checks the models without it; "
         "a model that needs it cannot be built and is reported as such. Install the package, or run "
         "shapecheck in the environment the model runs in."),
    Rule("SC908", "no-models", I, "The file defines or builds no nn.Module model.",
         "There is nothing to check in this file. This is a note, not a failure: a pre-commit hook "
         "that passes every changed .py file still succeeds."),
    Rule("SC915", "option-assumed", I, "A required command-line option was given a value to load the file.",
         "The file reads `opt = parser.parse_args()` at its top level, and an option it declares with "
         "required=True has no default. shapecheck evaluates the parser with an empty command line, so it "
         "gives that option its first `choices=` value, else the first value the file tests it for "
         "(`if opt.dataset in ['cifar10', 'fake']:`), and says which. Models built from other values may "
         "differ: give the option a default, or check with the value you run."),
    Rule("SC910", "side-effect-blocked", I, "User code tried to do something shapecheck does not allow.",
         "shapecheck runs constructors and forward in a worker that refuses network access, starting "
         "processes and writing files outside its own temporary folder. The attempt was stopped at the "
         "line shown, so the model it belongs to was not checked. Move such code out of __init__ and "
         "forward, or guard it."),
    Rule("SC911", "exit-called", I, "User code called sys.exit, exit or os._exit.",
         "The model was not checked, because its code asked the process to exit while it was built or run."),
    Rule("SC912", "timeout", I, "A model did not finish within the time limit.",
         "Building, tracing or proving fixes for one model took longer than --timeout (20 s by default). "
         "An endless loop in __init__ or forward is the usual cause; raise --timeout for a model that "
         "is simply slow to build."),
    Rule("SC913", "worker-crashed", I, "The worker process died while it checked a model.",
         "The model's code crashed the process that runs it (a segmentation fault, or the memory "
         "limit, --memory, was reached). The other models were still checked."),
    Rule("SC914", "memory-limit", I, "A model needed more memory than the check may take.",
         "Building or running the model's code allocated real memory beyond --memory (4096 MiB by default): "
         "usually a large tensor created on the CPU in __init__ or forward. Raise --memory, or create it on "
         "the device of the model's parameters."),
]

REGISTRY: dict[str, Rule] = {rule.code: rule for rule in _RULES}
BY_NAME: dict[str, Rule] = {rule.name: rule for rule in _RULES}


def rule(code: str) -> Rule:
    return REGISTRY[code]
