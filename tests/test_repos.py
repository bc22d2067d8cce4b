"""Small repositories in the shapes real ones take: each model is built from what the code
itself does (factories, call sites in other files, argparse defaults, config dataclasses,
README and docstring examples, hints), every forward argument gets an input, and nothing is
reported as an error."""

import os
import sys

import pytest

from shapecheck.api import check_file
from shapecheck.diagnostics import ModelResult, Severity
from shapecheck.render.terminal import model_header

REPOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repos")


def models(relative: str) -> dict:
    """name -> (status, class, init_source, init call, input shapes, input source)."""
    report = check_file(os.path.join(REPOS, relative))
    assert not [d for d in report.diagnostics if d.severity is Severity.ERROR]
    return {m.name: (m.status.value, m.class_name, m.init_source, m.init_call, m.input_shapes, m.input_source)
            for m in report.models}, report


def test_factories_are_models_under_their_own_names():
    found, _ = models("zoo/models/resnetish.py")
    assert found["ResNetish8"] == ("checked", "ResNetish", "factory", "ResNetish8()", ((2, 3, 32, 32),), "example")
    # the same class as ResNetish8: its example fits, and is used (no inference)
    assert found["ResNetish12"] == ("checked", "ResNetish", "factory", "ResNetish12()", ((2, 3, 32, 32),), "example")
    # the same class, but one input channel: the shared example does not fit, the input is inferred
    assert found["ResNetishGray"][:4] == ("checked", "ResNetish", "factory", "ResNetishGray()")
    assert found["ResNetishGray"][4][0][1] == 1 and found["ResNetishGray"][5] == "inferred"
    # `if pretrained:` does not run with the defaults, so the torchvision-style factory is built
    assert found["resnetish_pretrained"][:3] == ("checked", "ResNetish", "factory")
    # the class and the block it is given are checked through the factories
    assert found["ResNetish"][0] == found["Block"][0] == "not_checked"


def test_call_site_in_another_file_with_argparse_defaults():
    found, report = models("segment/unet/unet_model.py")
    status, cls, source, call, shapes, input_source = found["UNet"]
    assert (status, cls, source) == ("checked", "UNet", "call site train.py:25")
    assert call == "UNet(n_channels=3, n_classes=2, bilinear=False)"  # "3" converted by type=int
    assert input_source == "inferred" and shapes[0][1] == 3
    assert report.models[0].to_dict()["class_path"].endswith(os.path.join("unet", "unet_model.py"))
    assert ModelResult.from_dict(report.models[0].to_dict()) == report.models[0]
    header = model_header(report.models[0]).plain
    assert "built as UNet(n_channels=3, n_classes=2, bilinear=False) from call site train.py:25" in header


def test_module_level_argparse_and_multi_input_forwards():
    found, report = models("gan/cgan.py")
    assert found["discriminator"][0] == "checked"
    assert found["discriminator"][4] == ((8, 1024),)  # 1 x 32 x 32 from the parser's defaults
    assert found["critic"][4:] == (((4, 1, 32, 32), (4, 1, 32, 32)), "example")
    # noise and labels: the labels reach an Embedding (int64, one per sample), the noise size
    # is solved from the Linear after the concatenation (100 + 10 = 110)
    assert found["generator"][0] == "checked"
    assert found["generator"][4:] == (((8, 100), (8,)), "inferred")
    assert not [d for d in report.diagnostics if d.model == "generator"]


@pytest.mark.parametrize("name, shapes", [
    ("LabelledGenerator", ((8, 64), (8,))),  # noise multiplied by the label embedding: its size
    ("PairDiscriminator", ((8, 3, 28, 28), (8, 3, 28, 28))),  # 6 channels shared by two images
    ("Denoiser", ((8, 3, 28, 28), (8,))),  # a time step per sample
    ("CodeGenerator", ((8, 3, 32, 32), (8, 8))),  # the image shape stated by `img_shape`
])
def test_every_forward_argument_gets_an_input(name, shapes):
    found, report = models("gan/pairs.py")
    assert found[name][0] == "checked" and found[name][4:] == (shapes, "inferred")
    assert not [d for d in report.diagnostics if d.model == name]
    model = {m.name: m for m in report.models}[name]
    assert model.output_shapes
    shown = ", ".join("×".join(map(str, s)) for s in shapes)  # the shapes, each after its name
    header = model_header(model).plain
    assert "(the first combination tried that runs; other sizes not determined)" in header
    assert [part.split(" ", 1)[1] for part in model.accepted_inputs.split(" (")[0].split(", ")] == shown.split(", ")


def test_blocks_built_by_a_model_of_another_file():
    found, report = models("parts/seg/layers.py")
    down = {m.name: m for m in report.models}["Down"]
    assert down.status.value == "not_checked"
    assert down.reason == f"checked as part of `SegNet` ({os.path.join('seg', 'net.py')}:10), which builds it"
    assert [(d.code, d.model) for d in report.diagnostics] == [("SC904", "Unused")]  # built nowhere


def test_einops_first_layer_and_the_stated_image_size():
    pytest.importorskip("einops")
    found, report = models("patchvit/patchvit/vit.py")
    status, cls, source, call, shapes, input_source = found["PatchViT"]
    assert (status, source, shapes, input_source) == ("checked", "README.md:6", ((8, 3, 96, 96),), "inferred")
    assert not report.diagnostics


def test_config_dataclass_defaults():
    found, _ = models("gpt/model.py")
    assert found["GPT"][:4] == ("checked", "GPT", "defaults", "GPT(config=GPTConfig())")
    assert found["GPT"][5] == "inferred"


@pytest.mark.parametrize("module, call, shape", [
    ("tiny", "TinyViT(image_size=32, patch_size=8, num_classes=10, dim=24)", (1, 3, 32, 32)),
    ("small", "TinyViT(image_size=16, patch_size=4, num_classes=5, dim=12, depth=2)", (2, 1, 16, 16)),
])
def test_readme_blocks_build_the_class_their_import_names(module, call, shape):
    found, report = models(f"vitlib/vitlib/{module}.py")
    status, cls, source, written, shapes, input_source = found["TinyViT"]
    assert (status, written, shapes, input_source) == ("checked", call, (shape,), "example")
    assert source.startswith("README.md:")
    header = model_header(next(m for m in report.models if m.name == "TinyViT")).plain
    assert "from an example in README.md" in header.splitlines()[0]


def test_docstring_example():
    found, _ = models("vitlib/vitlib/mixer.py")
    assert found["Mixer"] == ("checked", "Mixer", "vitlib/mixer.py:8", "Mixer(dim=16, depth=2)", ((2, 3, 32, 32),), "example")


def test_hint_and_pyproject_init():
    found, _ = models("hinted/models.py")
    assert found["Encoder"][:3] == ("checked", "Encoder", "config")
    assert found["Encoder"][4][0][1] == 3
    assert found["Decoder"][:3] == ("checked", "Decoder", "hint")
    assert found["Decoder"][4][0][1] == 4  # width=4 from the hint


def test_cli_init_beats_the_hint():
    report = check_file(os.path.join(REPOS, "hinted/models.py"), init={"Decoder.width": 5})
    decoder = next(m for m in report.models if m.name == "Decoder")
    assert decoder.init_source == "cli" and decoder.input_shapes[0][1] == 5


def test_a_wrapper_built_around_another_model_of_the_project():
    found, report = models("vitlib/vitlib/pooled.py")
    status, cls, source, call, shapes, input_source = found["Pooled"]
    assert (status, source, shapes, input_source) == ("checked", "README.md:37", ((3, 3, 32, 32),), "example")
    assert call == "Pooled(TinyViT(image_size=32, patch_size=8, num_classes=10, dim=24), hidden=7)"
    assert report.models[0].output_shapes == ((3, 7),) and not report.diagnostics


def test_a_required_option_takes_the_first_value_the_code_tests_it_for():
    """`--dataset` is required and has no default; `if opt.dataset in ["cifar10", "fake"]:`
    sets the channels: the script's models are built as that branch says (3 channels)."""
    found, report = models("gan/dcgan.py")
    assert found["netG"][0] == found["netD"][0] == "checked"
    assert found["netD"][4][0][1] == 3 and found["netG"][4][0][1] == 16
    outputs = {m.name: m.output_shapes for m in report.models}
    assert outputs["netG"][0][1] == 3
    [note] = [d for d in report.diagnostics if d.code == "SC915"]  # the assumption is stated
    assert note.severity is Severity.INFO and note.span.line == 8  # parser.add_argument("--dataset", required=True)
    assert "`--dataset` is required and has no default: the models were built as `--dataset cifar10`" in note.message
    assert "the first value the file tests it for" in note.message


BORROWED = "README.md:7, for `Net` of {}, same name and parameters".format(os.path.join("variants", "net.py"))


@pytest.mark.parametrize("module", ["net_pooled", "net_fixed", "net_3d"])
def test_a_variant_in_a_sibling_module_takes_the_arguments_written_for_its_namesake(module):
    """The README builds only `Net` of variants/net.py; the other `Net`s take its arguments
    when they fit their signature, and say so."""
    found, report = models(f"variants/variants/{module}.py")
    status, cls, source, call, shapes, input_source = found["Net"]
    if module == "net_3d":  # `frames` is required and no call of a `Net` gives it
        assert (status, source) == ("not_checked", "")
        assert [d.code for d in report.diagnostics] == ["SC904"]
        return
    assert (source, call) == (BORROWED, "Net(image_size=32, patch=8, num_classes=10)")
    assert (shapes, input_source) == (((2, 3, 32, 32),), "example")
    if module == "net_pooled":
        assert status == "checked" and report.models[0].output_shapes == ((2, 10),)
        return
    # the head of net_fixed counts 8 × 8 patches: with 32 / 8 = 4 × 4 the Linear fails, but the
    # arguments were not written for this class: not checked (INFO), not an error
    assert status == "not_checked"
    assert [(d.code, d.severity) for d in report.diagnostics] == [("SC903", Severity.INFO)]
    assert "the arguments of README.md:7, written for `Net` of" in report.diagnostics[0].message


def test_a_wrapper_variant_takes_the_wrapped_model_from_its_namesake_site():
    """`Trainer(net, image_size=32)` after `net = Net(...)`: the `Net` it wraps is loaded
    from the file the README imports it from; the variant's scalar parameter lives on the CPU
    while the model is built on meta, and is moved with it."""
    found, _ = models("variants/variants/wrap_smooth.py")
    status, _, source, call, shapes, _ = found["Trainer"]
    assert status == "checked" and source.startswith("README.md:11, for `Trainer` of")
    assert call == "Trainer(Net(image_size=32, patch=8, num_classes=10), image_size=32)"
    assert shapes[0][1:] == (3, 32, 32)


def test_vectors_sized_by_the_options_the_constructor_sums():
    """`opt.latent_dim + opt.n_classes + opt.code_dim` sizes the Linear that takes
    `cat((noise, labels, code))`: each vector gets its option's size."""
    found, report = models("gan/codes.py")
    for name in ("Generator", "generator"):
        assert found[name][0] == "checked" and found[name][4:] == (((8, 12), (8, 5), (8, 2)), "inferred")
    assert {m.name: m for m in report.models}["generator"].output_shapes == ((8, 1, 16, 16),)


def test_labels_masked_before_their_embedding_and_a_time_step():
    """The class embedding meets a per-sample mask (`torch.where`) before the image reaches its
    first conv: the classes are one per sample, the time step too, and the image sides a
    multiple of 8 (three halvings then three doublings)."""
    found, report = models("diffusion/guided.py")
    status, _, source, _, shapes, input_source = found["Denoiser"]
    assert (status, source, input_source) == ("checked", "call site guided.py:46", "inferred")
    assert shapes == ((8, 3, 32, 32), (8,), (8,))
    model = {m.name: m for m in report.models}["Denoiser"]
    assert model.input_dtypes == ("float32", "float32", "int64") and model.output_shapes == ((8, 3, 32, 32),)


def test_a_configuration_file_names_the_class_and_its_arguments():
    found, _ = models("vaezoo/models/plain_ae.py")
    # configs/plain.yaml: `name: PlainAE` with in_channels and code_size; the data section is not read
    assert found["PlainAE"][:4] == ("checked", "PlainAE", "config configs/plain.yaml:2",
                                    "PlainAE(in_channels=3, code_size=64)")
    assert found["PlainAE"][4][0][1:] == (3, 32, 32)  # 32 -> 16 -> 8, as to_code's 32·8·8 needs


def test_a_sibling_package_importing_a_missing_package_still_loads():
    # models/__init__.py imports perceptual.py, which imports a package that is not installed:
    # the package still loads, the model that does not use it is checked (built in a unittest
    # TestCase), and only the class that uses the missing package is not checked
    found, report = models("vaezoo/models/perceptual.py")
    assert found["PerceptualAE"][:4] == ("checked", "PerceptualAE", "call site tests/test_perceptual.py:10",
                                         "PerceptualAE(3, 16)")
    assert found["FeatureLoss"][0] == "not_checked"
    assert "vaezoo_missing_vision" in report.models[[m.name for m in report.models].index("FeatureLoss")].reason
    plain, _ = models("vaezoo/models/plain_ae.py")  # imports `models`, whose __init__ imports perceptual.py
    assert plain["PlainAE"][0] == "checked"
    assert not [name for name in sys.modules if name.startswith("vaezoo_missing")]


def test_a_guarded_import_keeps_its_fallback():
    from shapecheck.engine import loader

    namespace = loader.load(loader.parse_file(os.path.join(REPOS, "vaezoo", "models", "sampled.py")))
    assert namespace["speedups"] is None  # `except ImportError: speedups = None` ran, no stand-in
    assert "vaezoo_missing_speedups" not in sys.modules


def test_a_view_after_permute_is_an_error_with_a_proven_fix():
    import torch

    report = check_file(os.path.join(REPOS, "vaezoo", "models", "sampled.py"))
    [error] = [d for d in report.diagnostics if d.severity is Severity.ERROR]
    assert (error.rule.code, error.span.line) == ("SC208", 27)
    assert "cannot view 8×3×5 as (-1, 5)" in error.message
    assert error.fix.applicability.value == "safe" and error.fix.edits[0].new_text == "z.reshape(-1, self.code_size)"
    assert report.models[0].init_source == "config configs/sampled.json:1"
    # torch agrees: the view fails at a batch of 8, and works at a batch of 1
    z = torch.randn(5).repeat(3, 8, 1).permute(1, 0, 2)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        z.view(-1, 5)
    assert z[:1].view(-1, 5).shape == (3, 5)


def test_a_none_default_that_a_caller_replaces_takes_the_callers_value():
    # Encoder(shared_block=None) builds, but its forward calls the block: the call in train.py
    # passes one, `Residual(features=opt.dim * 2 ** opt.downsample)` = Residual(features=64)
    found, _ = models("shared/models.py")
    assert found["Encoder"][:4] == ("checked", "Encoder", "call site train.py:12",
                                    "Encoder(dim=8, downsample=3, shared_block=Residual(features=64))")
    assert found["Encoder"][4][0][1] == 3


def _by_name(relative: str) -> dict:
    report = check_file(os.path.join(REPOS, relative))
    assert not [d for d in report.diagnostics if d.severity is Severity.ERROR]
    return {m.name: m for m in report.models}


def test_a_loop_over_stated_values_builds_at_its_first_pass_and_a_random_layer_drop_runs():
    """`for num_bins in (0, 4):` around the construction: the first pass's value; the backbone
    passed in is imported inside the main block; the blocks dropped at random (`all(to_drop)` on
    a tensor made in forward) are drawn for real, from a fixed seed, so the check is complete
    and the same every time."""
    found = _by_name("robotlib/robotlib/policy.py")
    policy = found["Policy"]
    assert (policy.status.value, policy.init_source) == ("checked", "call site policy.py:44")
    assert policy.init_call == ("Policy(Backbone(image_size=32, patch=8, dim=24), dim=24, depth=6, dim_action=7, "
                                "num_bins=0, block_drop=0.3)")
    # `extra=` is a tensor passed by name; `return_tokens=False` is an option left at its default
    assert (policy.input_shapes, policy.input_names) == (((2, 3, 32, 32), (2, 24)), ("", "extra"))
    assert policy.output_shapes == ((2, 7),)
    again = _by_name("robotlib/robotlib/policy.py")["Policy"]
    assert [r.name for r in again.records] == [r.name for r in policy.records]
    blocks = {r.name for r in policy.records if r.name.startswith("blocks.")}
    assert 0 < len(blocks) < 6  # some of the six blocks were dropped, as block_drop=0.3 does


def test_a_class_built_only_into_another_models_call_is_checked_as_part_of_it():
    backbone = _by_name("robotlib/robotlib/backbone.py")["Backbone"]
    assert backbone.status.value == "not_checked"
    assert backbone.reason == "checked as part of `Policy` (robotlib/policy.py:44), which is built with it"


def test_a_table_of_settings_unpacked_by_the_loop_and_a_base_class():
    found = _by_name("robotlib/robotlib/heads.py")
    assert found["Slots"].status.value == "checked"
    assert found["Slots"].init_call == ("Slots(dim=24, num_slots=5, heads=[ReconstructionHead(dim=24, patch=8, "
                                        "channel_first=False)], softmax_over_slots=False)")
    assert found["Slots"].output_shapes[0] == (2, 5, 24)
    # Base's forward only raises: it is not a model of its own
    assert found["Base"].reason == "checked as part of its subclass `Slots` (line 27)"
    # no forward at all: listed, with why, and not as a finding
    assert found["Probe"].reason == "it has no `forward`: there is nothing to trace"
    assert found["Switch"].reason != found["Probe"].reason  # its forward is set when it is built


def test_example_tensors_passed_by_name_past_a_parameter_left_out():
    """`denoiser(images, time=..., class_labels=...)` skips `self_cond`: the named tensors are
    traced by name; the trainer passes `class_labels` through **kwargs to the model it wraps."""
    found = _by_name("robotlib/robotlib/denoise.py")
    denoiser, trainer = found["Denoiser"], found["Trainer"]
    assert denoiser.status.value == trainer.status.value == "checked"
    assert denoiser.input_shapes == ((4, 3, 24, 24), (4,), (4,))
    assert denoiser.input_names == ("", "time", "class_labels")
    assert denoiser.input_dtypes == ("float32", "float32", "int64")
    assert denoiser.output_shapes == ((4, 3, 24, 24),)
    assert (trainer.input_shapes, trainer.input_names) == (((4, 3, 24, 24), (4,)), ("", "class_labels"))
    assert str(model_header(denoiser)).startswith("Denoiser  input 4×3×24×24, time=4, class_labels=4 (int64)")


def test_a_required_option_takes_the_value_the_readme_runs_the_script_with():
    """`--upscale` is required and has no default; the README runs `python main.py --upscale 3`."""
    sub = _by_name("superres/model.py")["SubPixel"]
    assert (sub.status.value, sub.init_source, sub.init_call) == ("checked", "call site main.py:13", "SubPixel(upscale=3)")
    assert sub.output_shapes[0][1:] == (1, 84, 84)  # 28 × 3


def test_an_alternative_constructor_and_attention_symbolic_shapes_cannot_follow():
    """`TinyLM.from_settings(Settings(vocab=100))` builds it; torch's symbolic shapes cannot slice
    the causal table for nn.MultiheadAttention, so the length that ran in a plain pass is checked
    and the other lengths are not determined (never a failure at every size)."""
    lm = _by_name("robotlib/robotlib/lm.py")["TinyLM"]
    assert (lm.status.value, lm.init_call) == ("checked", "TinyLM.from_settings(Settings(vocab=100))")
    assert lm.input_shapes == ((8, 32),) and lm.output_shapes == ((8, 32, 100),)
    assert lm.accepted_inputs == "T = 32 (other sizes not determined)"
