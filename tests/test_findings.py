"""The numbers behind each finding: what the messages and notes say, checked one by one."""

import os

import pytest

from shapecheck import api

from conftest import CASES, EXAMPLES


def findings(path, **kw):
    report = api.check_file(path, **kw)
    return {d.code: d for d in report.diagnostics}


def test_lenet_bug_numbers():
    found = findings(os.path.join(EXAMPLES, "lenet_bug.py"))
    fc1, view = found["SC101"], found["SC201"]
    assert (fc1.fact("expected"), fc1.fact("actual"), fc1.fact("flattened_from")) == (400, 576, (16, 16, 6, 6))
    assert fc1.message == "`fc1` expects 400 input features (in_features=16 * 5 * 5) but receives 576 = 16×6×6"
    assert "max_pool2d (line 23): H: 13→6 (drops 1 row), W: same" in fc1.notes
    assert (fc1.span.line, fc1.span.column, fc1.span.end_column) == (17, 29, 39)
    assert (fc1.related[0].span.line, fc1.related[0].span.column) == (25, 19)  # `self.fc1(x)` in forward
    assert view.message.endswith("into (-1, 400): 9216 is not a multiple of 400")
    assert "each sample has 16×6×6 = 576 values" in view.notes


def test_cats_vs_dogs_flatten_numbers():
    fc1 = findings(os.path.join(EXAMPLES, "dogs_cats_bug.py"))["SC101"]
    assert fc1.message.endswith("receives 12544 = 16×28×28")
    assert fc1.fix.edits[0].new_text == "16 * 28 * 28"
    assert "pool (line 28): H: 57→28 (drops 1 row), W: same" in fc1.notes


def test_first_conv_channels():
    conv = findings(os.path.join(EXAMPLES, "wrong_channels.py"))["SC102"]
    assert (conv.fact("expected"), conv.fact("actual"), conv.line) == (1, 3, 10)
    assert conv.message == "`features.0` expects 1 input channel but receives 3 channels (input 16×3×32×32)"


def test_batch_mixed_and_hardcoded():
    found = api.check_file(os.path.join(CASES, "batch_mixing.py")).diagnostics
    mixed = next(d for d in found if d.code == "SC202")
    assert (mixed.fact("batch"), mixed.fact("new_first"), mixed.fact("per_sample")) == (16, 9, 4608)
    assert mixed.message == ("`x.view(-1, 8192)` turns the batch of 16 into 9 rows: each sample has "
                             "128×6×6 = 4608 values, so rows now mix samples")
    linear = next(d for d in found if d.code == "SC101")
    assert (linear.fact("expected"), linear.fact("actual")) == (8192, 4608)  # the Linear to fix next
    hard = next(d for d in found if d.code == "SC203")
    assert hard.severity.value == "warning" and "hard-codes the batch size 16" in hard.message


def test_unet_skip_names_the_pool_and_sizes_that_work():
    cat = findings(os.path.join(CASES, "unet_skip.py"))["SC301"]
    assert cat.fact("working_sizes") == (48, 52)
    assert cat.fact("size_rule").startswith("multiples of 4")
    assert any(n.startswith("input sizes that no floor cuts line up: multiples of 4") for n in cat.notes)
    assert "pool (line 18): H: 25→12 (drops 1 row), W: same" in cat.notes
    for size in cat.fact("working_sizes"):  # the claim holds
        assert not findings(os.path.join(CASES, "unet_skip.py"), inputs=[f"2,3,{size},{size}"])


def test_unet_with_strided_convs_names_the_sizes_its_strides_divide():
    """No floor cuts 33 in a padded stride-2 convolution, so the sizes that no floor cuts
    would be every size, 33 included: the note gives the sizes the stride divides instead."""
    cat = findings(os.path.join(CASES, "unet_strided.py"))["SC301"]
    assert cat.fact("working_sizes") == (32, 34)
    assert cat.fact("size_rule").startswith("multiples of 2")
    assert any(n.startswith("input sizes that every stride divides line up: multiples of 2") for n in cat.notes)
    assert "pool" not in " ".join(cat.notes) + cat.fix.code
    for size in cat.fact("working_sizes"):  # the claim holds
        assert not findings(os.path.join(CASES, "unet_strided.py"), inputs=[f"2,3,{size},{size}"])


def test_kernel_too_large_says_what_would_fit():
    k = findings(os.path.join(CASES, "kernel_too_large.py"))["SC110"]
    assert (k.fact("min_sizes"), k.fact("padding_needed"), k.fact("working_sizes")) == ((5, 5), 1, (32,))
    assert k.notes[:4] == ("conv1 (line 15): H: ⌊(28−5)/1⌋+1 = 24, W: same", "pool (line 15): H: 24→12, W: same",
                           "conv2 (line 16): H: ⌊(12−5)/1⌋+1 = 8, W: same", "pool (line 16): H: 8→4, W: same")
    assert not findings(os.path.join(CASES, "kernel_too_large.py"), inputs=["4,1,32,32"])
    assert findings(os.path.join(CASES, "kernel_too_large.py"), inputs=["4,1,31,31"])


@pytest.mark.parametrize("name, code, numbers", [
    ("rnn_and_norm.py", "SC104", (16, 32)),
    ("loss_in_forward.py", "SC402", ((8, 1), (8,))),
])
def test_recurrent_and_loss_numbers(name, code, numbers):
    d = findings(os.path.join(CASES, name))[code]
    if code == "SC104":
        assert (d.fact("expected"), d.fact("actual")) == numbers
    else:
        assert (d.fact("input_shape"), d.fact("target_shape"), d.fact("broadcast_shape")) == numbers + ((8, 8),)


def test_output_rows_say_how_many_per_sample_and_where_they_were_made():
    d = findings(os.path.join(CASES, "output_rows.py"))["SC206"]
    assert (d.fact("rows"), d.fact("batch"), d.fact("row"), d.fact("output_shape")) == (128, 8, 16, (128, 10))
    assert d.message == ("the output has 16·N = 128 rows for an input batch of N = 8: `x.view(-1, 16)` turns "
                         "8×16×4×4 into 128 rows of 4×4 = 16 values, 16 per sample, one for each index of dim 1 (16)")
    assert (d.line, d.span.column, d.span.end_column) == (16, 12, 26)
