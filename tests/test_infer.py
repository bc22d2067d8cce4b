"""Input inference: the sizes a model accepts, checked against real torch on CPU tensors."""
import os

import pytest
import torch
from torch import nn

from shapecheck.engine import infer, loader

from helpers import exact_inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
MODELS = os.path.join(ROOT, "tests", "models")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Hundreds of tiny forward passes of new shapes: threads only add overhead."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _classes(path):
    return loader.load(loader.parse(open(path).read(), path))


def _meta(path, name):
    with torch.device("meta"):
        return _classes(path)[name]()


def _real(path, name):
    torch.manual_seed(0)
    return _classes(path)[name]().eval()


def real_accepts(model, shape, dtype=torch.float32, batch_axis=0):
    """Real CPU forward pass on a batch of 2: runs, and the output keeps the 2 samples."""
    x = torch.zeros(shape, dtype=dtype)
    try:
        with torch.no_grad():
            out = model(x)
    except (RuntimeError, ValueError, IndexError):
        return False
    out = out[0] if isinstance(out, tuple) else out
    return out.shape[batch_axis] == 2


def _mask_at(mask, point):
    return bool(mask[tuple(v - 1 for v in point)])


@pytest.fixture(scope="module")
def lenet_bug():
    path = os.path.join(EXAMPLES, "lenet_bug.py")
    return path, _meta(path, "Net"), _real(path, "Net")


@exact_inference
def test_lenet_bug_sizes_match_real_torch(lenet_bug):
    path, meta, real = lenet_bug
    found = infer.infer_inputs(meta, path)
    assert found.ok and found.inputs[0].shape == (8, 1, 28, 28)
    assert found.accepted == "H and W each from 26 to 29; also H × W in 10–13 × 106–109, 106–109 × 10–13"
    squares = [s for s in range(1, 49) if real_accepts(real, (2, 1, s, s))]
    assert squares == [26, 27, 28, 29]
    tall = [h for h in range(1, 33) if real_accepts(real, (2, 1, h, 108))]
    assert tall == [10, 11, 12, 13]
    wide = [w for w in range(100, 116) if real_accepts(real, (2, 1, 12, w))]
    assert wide == [106, 107, 108, 109]
    _, mask = infer.solve(meta, infer.find_layout(meta))
    scanned = [(s, s) for s in range(1, 49)] + [(h, 108) for h in range(1, 33)] + [(12, w) for w in range(100, 116)]
    for point in scanned:
        assert _mask_at(mask, point) == (point[0] == point[1] and 26 <= point[0] <= 29
                                         or point[0] in range(10, 14) and point[1] in range(106, 110)
                                         or point[1] in range(10, 14) and point[0] in range(106, 110)), point


@exact_inference
def test_lenet_blocks_match_real_torch():
    path = os.path.join(EXAMPLES, "lenet.py")
    meta, real = _meta(path, "Net"), _real(path, "Net")
    found = infer.infer_inputs(meta, path)
    assert found.ok and found.inputs[0].shape == (8, 1, 32, 32)
    assert found.accepted.startswith("H and W each from 30 to 33; also H × W in 10–13 × 150–153, "
                                     "14–17 × 78–81")
    squares = [s for s in range(1, 49) if real_accepts(real, (2, 1, s, s))]
    assert squares == [30, 31, 32, 33]
    _, mask = infer.solve(meta, infer.find_layout(meta))
    for lo, hi in infer.blocks(mask):  # every corner runs, every neighbour just outside fails
        for point in (lo, hi):
            assert real_accepts(real, (2, 1) + point), point
        for point in infer._neighbours(lo, -1, 512) + infer._neighbours(hi, +1, 512):
            assert not real_accepts(real, (2, 1) + point), point
    assert len(infer.blocks(mask)) == 9  # 16·a·b = 576: a·b = 36 in nine ways


@pytest.mark.parametrize("name, shape_of, sizes, accepted, text", [
    ("FixedTokens", lambda t: (2, t), range(1, 41), [20], "T = 20 only"),
    ("Recurrent", lambda t: (2, t, 12), range(1, 21), list(range(1, 21)), "any T"),
    ("Signal", lambda n: (2, 2, n), range(1, 61), [17, 18], "L from 17 to 18"),
    pytest.param("Attention", lambda t: (2, t, 32), range(1, 13), list(range(1, 13)), "any T",
                 marks=exact_inference),
])
def test_sequence_models_match_real_torch(name, shape_of, sizes, accepted, text):
    path = os.path.join(MODELS, "infer_seq.py")
    real = _real(path, name)
    found = infer.infer_inputs(_meta(path, name), path)
    dtype = torch.int64 if name == "FixedTokens" else torch.float32
    assert [s for s in sizes if real_accepts(real, shape_of(s), dtype)] == accepted
    assert found.ok and found.accepted == text
    assert found.inputs[0].dtype == ("int64" if name == "FixedTokens" else "float32")


@exact_inference
def test_time_major_gru_keeps_batch_in_dimension_one():
    path = os.path.join(MODELS, "infer_seq.py")
    real = _real(path, "TimeMajorGRU")
    found = infer.infer_inputs(_meta(path, "TimeMajorGRU"), path)
    assert found.ok and found.accepted == "any T ≥ 4" and found.inputs[0].shape == (32, 8, 6)
    assert [t for t in range(1, 21) if real_accepts(real, (t, 2, 6))] == list(range(4, 21))


def test_linear_first_is_fixed_features():
    path = os.path.join(MODELS, "infer_seq.py")
    real = _real(path, "Mlp")
    found = infer.infer_inputs(_meta(path, "Mlp"), path)
    assert found.ok and found.accepted == "N×784 only" and found.inputs[0].shape == (8, 784)
    assert real_accepts(real, (2, 784)) and not real_accepts(real, (2, 1, 28, 28))


@exact_inference
def test_one_size_and_any_size_images():
    path = os.path.join(MODELS, "infer_image.py")
    only, anything = _real(path, "OnlyThirtyTwo"), _real(path, "AnySize")
    found = infer.infer_inputs(_meta(path, "OnlyThirtyTwo"), path)
    assert found.accepted.startswith("H = W = 32; also H × W in 6 × 396, 8 × 200")
    assert [s for s in range(1, 41) if real_accepts(only, (2, 3, s, s))] == [32]
    assert real_accepts(only, (2, 3, 6, 396)) and not real_accepts(only, (2, 3, 6, 395))
    found = infer.infer_inputs(_meta(path, "AnySize"), path)
    assert found.accepted == "any H, W ≥ 5" and found.inputs[0].shape == (8, 3, 28, 28)
    assert [s for s in range(1, 41) if real_accepts(anything, (2, 3, s, s))] == list(range(5, 41))
    assert real_accepts(anything, (2, 3, 5, 300)) and not real_accepts(anything, (2, 3, 4, 300))


def test_volume_sizes_match_real_torch():
    path = os.path.join(MODELS, "infer_image.py")
    real = _real(path, "Volume")
    meta = _meta(path, "Volume")
    found = infer.infer_inputs(meta, path)
    assert found.accepted.startswith("D, H, W each from 7 to 8; also D × H × W in 3–4 × 3–4 × 55–56")
    _, mask = infer.solve(meta, infer.find_layout(meta))
    scanned = [(s, s, s) for s in range(1, 25)] + [(3, 4, w) for w in range(50, 60)]
    scanned += [(8, h, 20) for h in range(1, 10)]
    for point in scanned:
        assert _mask_at(mask, point) == real_accepts(real, (2, 1) + point), point


@pytest.mark.parametrize("name, said", [
    ("NoSize", "fc expects 401 features, but no input size gives 401 (input N×1×H×W from conv): "
               "H = W = 28 gives 400, 32 gives 400, 64 gives 400"),
    ("ChannelsWrong", "conv2 expects 8 channels, but no input size gives 8 (input N×1×H×W from conv1): "
                      "H = W = 28 gives 6, 32 gives 6, 64 gives 6"),
])
def test_no_size_fits(name, said):
    path = os.path.join(MODELS, "infer_image.py")
    real = _real(path, name)
    found = infer.infer_inputs(_meta(path, name), path)
    assert not found.ok and found.inputs[0].shape == (8, 1, 28, 28) and found.accepted == "no size"
    assert found.reason == said
    assert not any(real_accepts(real, (2, 1, s, s)) for s in range(1, 41))


def test_first_layer_is_the_first_one_called():
    class Late(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8 * 4 * 4, 2)  # registered first, called last
            self.conv = torch.nn.Conv2d(3, 8, 1)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    with torch.device("meta"):
        model = Late()
    layout = infer.find_layout(model)
    assert (layout.layer, layout.shape) == ("conv", (8, 3, None, None))
    found = infer.infer_inputs(model, "<late>")
    assert found.accepted == "H = W = 4; also H × W in 1 × 16, 2 × 8, 8 × 2, 16 × 1"
    assert found.inputs[0].shape == (8, 3, 4, 4)
    real = Late()
    sizes = [(h, w) for h in (1, 2, 3, 4, 5, 8, 16) for w in (1, 2, 4, 5, 8, 16, 17)]
    assert [p for p in sizes if real_accepts(real, (2, 3) + p)] == [(1, 16), (2, 8), (4, 4), (8, 2), (16, 1)]


def test_model_on_cpu_gives_the_same_answer(lenet_bug):
    path, meta, real = lenet_bug
    assert infer.infer_inputs(real, path).accepted == infer.infer_inputs(meta, path).accepted


def test_no_first_layer_and_a_failing_forward():
    class Plain(torch.nn.Module):
        def forward(self, x):
            return x * 2

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)

        def forward(self, x):
            raise ValueError("needs a mask argument")

    assert infer.infer_inputs(Plain(), "<plain>") is None
    found = infer.infer_inputs(Broken(), "<broken>")
    assert not found.ok and "needs a mask argument" in found.reason and "N×1×H×W" in found.reason


def test_describe_sets():
    grid = torch.zeros(64, 64, dtype=torch.bool)
    grid[31, 31] = True
    assert infer.describe(grid, ("H", "W")) == "H = W = 32 only"
    grid[:] = False
    for s in (8, 9, 10, 16):
        grid[s - 1, s - 1] = True
    assert infer.describe(grid, ("H", "W")) == "H = W only, at 8 to 10, 16"
    grid[:] = True
    assert infer.describe(grid, ("H", "W")) == "any H, W"
    line = torch.zeros(100, dtype=torch.bool)
    line[6:] = True
    assert infer.describe(line, ("T",)) == "any T ≥ 7"
    grid[:] = False
    grid[2:, 4:] = True
    assert infer.describe(grid, ("H", "W")) == "H ≥ 3 with W ≥ 5"


def test_view_constraint_names_its_line():
    path = os.path.join(MODELS, "infer_image.py")
    model = _meta(path, "Reshaped")
    found = infer.infer_inputs(model, path)
    assert not found.ok
    assert found.reason.startswith("view(-1, 102) at line ")
    line = int(found.reason.split("at line ")[1].split(" ")[0])
    assert "view(-1, 102)" in open(path).read().splitlines()[line - 1]
    assert found.reason.endswith("H = W = 28 gives 3360, 32 gives 4352, 64 gives 16896")
    real = _real(path, "Reshaped")
    assert not any(real_accepts(real, (2, 1, s, s)) for s in range(1, 41))


def test_einops_pattern_layer_states_the_input():
    einops_torch = pytest.importorskip("einops.layers.torch")
    from shapecheck.engine.patterns import pattern_input

    video = einops_torch.Rearrange("b c (f pf) (h p1) (w p2) -> b f (h w) (pf p1 p2 c)", p1=16, p2=16, pf=2)
    found = pattern_input(video, torch.nn.LayerNorm(3 * 16 * 16 * 2))
    assert (found.shape, found.steps, found.names) == ((None, 3, None, None, None), (1, 1, 2, 16, 16), ("F", "H", "W"))
    assert pattern_input(video, None) is None  # the channels are stated nowhere
    assert pattern_input(einops_torch.Rearrange("b ... -> b (...)"), None) is None


def test_slow_solving_keeps_the_size_that_runs(monkeypatch):
    """The symbolic solve may take a share of the budget; past it, the size that ran is kept."""
    from shapecheck.engine import deadline

    def slow(*args, **kwargs):
        while True:
            deadline.check()

    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    model(torch.empty(1, 3, 8, 8, device="meta"))  # torch's first meta op imports a lot: not timed
    monkeypatch.setattr(infer, "symbolic_trace", slow)
    monkeypatch.setattr(infer, "SOLVING_SHARE", 0.01)
    deadline.start(60)
    try:
        found = infer.infer_inputs(model, "m.py", hints=(40,))
    finally:
        deadline.start(None)
    assert found.ok and found.inputs[0].shape == (8, 3, 40, 40)  # the stated size runs first
    assert found.accepted == "H = W = 40 (other sizes not determined)"
    assert "solving for them took over 3 s" in found.reason


def test_stated_sizes_are_tried_frames_first_and_images_square():
    from shapecheck.engine.infer import Layout, candidate_sizes

    video = Layout("conv", "Conv3d(in_channels=3)", (8, 3, None, None, None), ("D", "H", "W"), 0)
    assert candidate_sizes(video, (224, 8))[0] == (8, 224, 224)  # img_size=224, num_frames=8
    image = Layout("conv", "Conv2d(in_channels=3)", (8, 3, None, None), ("H", "W"), 0)
    assert candidate_sizes(image, (128, 256))[:2] == [(128, 256), (256, 128)]  # height, width: both used
    assert candidate_sizes(image, (64,))[0] == (64, 64)


def test_an_op_that_needs_tensor_values_does_not_hide_the_sizes_before_it(tmp_path):
    """`torch.nonzero` has no size without data: inference solves the layers before it (the
    Linear after two 2× downsamplings fixes H = W = 15 or 16) and the model is checked."""
    from shapecheck.api import check_file

    path = tmp_path / "picker.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n\n"
        "class Picker(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)\n"
        "        self.fc = nn.Linear(4 * 8 * 8, 10)\n\n"
        "    def forward(self, x):\n"
        "        return torch.nonzero(self.fc(torch.flatten(self.conv(x), 1)) > 0)\n")
    [model] = check_file(str(path)).models
    assert (model.status.value, model.input_source, model.input_shapes) == ("checked", "inferred", ((8, 1, 16, 16),))
    assert model.accepted_inputs.startswith("H and W each from 15 to 16")


def test_rows_of_whole_positions_leave_the_image_size_free(tmp_path):
    """`x.view(-1, 16)` of N×H×W×16 makes one row per position (a vector quantizer's lookup),
    and the rows are put back: no size of H and W is ruled out by it."""
    from shapecheck.api import check_file

    path = tmp_path / "quantized.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n\n"
        "class Quantized(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.encode = nn.Conv2d(3, 16, 4, stride=2, padding=1)\n"
        "        self.codes = nn.Embedding(32, 16)\n\n"
        "    def forward(self, x):\n"
        "        z = self.encode(x).permute(0, 2, 3, 1).contiguous()\n"
        "        flat = z.view(-1, 16)\n"
        "        nearest = torch.cdist(flat, self.codes.weight).argmin(1)\n"
        "        return self.codes(nearest).view(z.shape).permute(0, 3, 1, 2)\n")
    [model] = check_file(str(path)).models
    assert (model.status.value, model.input_source) == ("checked", "inferred")


GENERATORS = '''import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self, nz=24, width=8):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, width * 2, 4, 1, 0), nn.ReLU(),
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.head = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.up(x), 1))
'''


def test_a_transposed_convolution_first_takes_a_latent_of_one_by_one(tmp_path):
    """A DCGAN-style generator is fed z of N×nz×1×1: inferred so, not as a 28×28 image (which it
    also accepts)."""
    path = tmp_path / "generators.py"
    path.write_text(GENERATORS)
    found = infer.infer_inputs(_meta(str(path), "Generator"), str(path))
    assert found.ok and found.inputs[0].shape == (8, 24, 1, 1)
    assert real_accepts(_real(str(path), "Generator"), (2, 24, 1, 1))


@exact_inference
def test_a_decoder_whose_head_fixes_its_input_size_gets_that_size(tmp_path):
    path = tmp_path / "generators.py"
    path.write_text(GENERATORS)
    found = infer.infer_inputs(_meta(str(path), "Decoder"), str(path))
    assert found.ok and found.inputs[0].shape == (8, 16, 7, 7) and found.accepted.startswith("H = W = 7;")


class _DenseNetLike(nn.Module):
    """A bottleneck factor, a pooling window and a step are sizes, but not the input's."""

    def __init__(self, growth_rate=12, bn_size=4, pool_size=3, step_size=2, image_size=32):
        super().__init__()
        self.conv = nn.Conv2d(3, growth_rate * bn_size, 3)


def test_only_sizes_of_the_input_are_stated_sizes():
    from shapecheck.engine import construct

    assert construct.stated(None, _DenseNetLike) == ((32,), ())
