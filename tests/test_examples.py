"""engine.examples: example inputs read from the file, never executed."""

import os
import textwrap

from shapecheck.engine import discover, loader
from shapecheck.engine.discover import InputSpec
from shapecheck.source.examples import find_examples

PATH = os.path.join(os.path.dirname(__file__), "models", "loading", "example_cases.py")


def examples_of(text):
    return find_examples(loader.parse(textwrap.dedent(text), "m.py"))


def shapes(found):
    return {name: (tuple((s.shape, s.dtype) for s in specs), line)
            for name, (specs, line) in found.items()}


def test_every_documented_form_in_a_script_that_must_not_run():
    src = loader.parse_file(PATH)  # parsed only: loading would fail on torchinfo
    assert shapes(find_examples(src)) == {
        "Direct": ((((4, 1, 32, 32), "float32"),), 51),
        "ThroughVariable": ((((8, 3, 32, 32), "float32"),), 58),
        "Inline": ((((2, 3, 64, 64), "float32"),), 59),
        "Tokens": ((((4, 20), "int64"), ((4, 20), "bool")), 62),
        "tokens": ((((4, 20), "int64"), ((4, 20), "bool")), 62),
        "Summarised": ((((2, 1, 28, 28), "float32"),), 63),
        "Informed": ((((16, 1, 28, 28), "float32"),), 64),
        "model": ((((16, 10), "float32"),), 65),
    }
    assert "Unused" not in find_examples(src)


def test_sizes_from_constants_locals_and_arithmetic():
    found = examples_of("""\
        import torch
        C, H = 3, 32
        SIZE = (C, H, H)

        class Net:
            pass

        def main():
            batch = 2 * 4
            net = Net()
            net(torch.randn(batch, SIZE[0], H // 2, SIZE[-1] - 2, device="cpu"))
        """)
    assert shapes(found) == {"Net": ((((8, 3, 16, 30), "float32"),), 11)}


def test_dtypes_and_tensor_methods():
    found = examples_of("""\
        import torch
        from torch import zeros as z

        class A: pass
        class B: pass
        class C: pass
        class D: pass
        class E: pass

        A()(torch.randn(4, 20).long())
        B()(z(2, 6).to(torch.long).unsqueeze(0))
        C()(torch.tensor([[1, 2, 3], [4, 5, 6]]))
        D()(torch.ones(2, 3, 4, dtype=torch.float16).view(2, -1))
        E()(torch.full((2, 5), 7, dtype=torch.int32), torch.empty(size=(2,)))
        """)
    assert shapes(found) == {
        "A": ((((4, 20), "int64"),), 10),
        "B": ((((1, 2, 6), "int64"),), 11),
        "C": ((((2, 3), "int64"),), 12),
        "D": ((((2, 12), "float16"),), 13),
        "E": ((((2, 5), "int32"), ((2,), "float32")), 14),
    }


def test_randint_forms():
    found = examples_of("""\
        import torch
        class A: pass
        class B: pass
        A()(torch.randint(100, (4, 20)))
        B()(torch.randint(low=0, high=9, size=(2, 7)))
        """)
    assert shapes(found) == {"A": ((((4, 20), "int64"),), 4), "B": ((((2, 7), "int64"),), 5)}


def test_summaries_by_library():
    found = examples_of("""\
        import torch
        import torchinfo
        import torchsummary as ts

        class A: pass
        class B: pass
        class C: pass
        class D: pass

        ts.summary(A(), [(1, 28, 28), (10,)], batch_size=8)
        torchinfo.summary(B(), (1, 28, 28), batch_dim=0)
        torchinfo.summary(C(), input_data=[torch.randn(3, 5)])
        torchinfo.summary(D(), input_size=(4, 12), dtypes=[torch.long])
        """)
    assert shapes(found) == {
        "A": ((((8, 1, 28, 28), "float32"), ((8, 10), "float32")), 10),
        "B": ((((2, 1, 28, 28), "float32"),), 11),
        "C": ((((3, 5), "float32"),), 12),
        "D": ((((4, 12), "int64"),), 13),
    }


def test_unknown_sources_give_no_example():
    found = examples_of("""\
        import torch
        from mytools import summary

        class A: pass
        class B: pass
        class C: pass

        summary(A(), (1, 28, 28))
        for x, y in loader:
            B()(x)
        x = torch.randn(2, 3)
        x = load()
        C()(x)
        C()(input=torch.randn(2, 3))
        """)
    assert found == {}


def test_the_first_example_in_source_order_wins():
    found = examples_of("""\
        import torch

        class Net: pass

        def later():
            Net()(torch.randn(8, 3))

        Net()(torch.randn(2, 3))
        """)
    assert shapes(found) == {"Net": ((((8, 3), "float32"),), 6)}


def test_lambda_bodies_and_other_scopes_do_not_leak_bindings():
    found = examples_of("""\
        import torch

        class Net: pass

        def make():
            x = torch.randn(2, 3)
            return x

        def use():
            Net()(x)
        """)
    assert found == {}


def test_find_models_attaches_examples(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent("""\
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def forward(self, x):
                return x

        model = Net()
        seq = nn.Sequential(nn.Linear(3, 3))

        if __name__ == "__main__":
            model(torch.randn(5, 3))
            seq(torch.zeros(7, 3))
        """))
    src = loader.parse_file(str(path))
    specs = {s.name: s for s in discover.find_models(src, loader.load(src))}
    assert specs["Net"].example == (InputSpec((5, 3)),) and specs["Net"].example_line == 12
    assert specs["model"].example == (InputSpec((5, 3)),)
    assert specs["seq"].example == (InputSpec((7, 3)),) and specs["seq"].example_line == 13


def test_keywords_that_pass_nothing_keep_the_example():
    found = examples_of("""
        class Net: pass
        class Other: pass
        net = Net()
        other = Other()
        video = torch.randn(3, 3, 8, 64, 64)
        net(video, mask=None)
        other(video, mask=torch.ones(3, 8))
    """)
    video = ((((3, 3, 8, 64, 64), "float32"),), 7)
    masked = ((((3, 3, 8, 64, 64), "float32"), ((3, 8), "float32")), 8)  # `mask` placed by name later
    assert shapes(found) == {"Net": video, "net": video, "Other": masked, "other": masked}
    assert found["Other"][0][1].keyword == "mask"


def test_a_helper_that_returns_a_tensor_and_the_legacy_constructors():
    found = examples_of("""\
        import torch
        from torch import nn

        class Net(nn.Module):
            pass

        class Labels(nn.Module):
            pass

        def sample_images(count=5):
            size = 8
            return torch.FloatTensor(count, 3, size, size).uniform_(0.0, 1.0)

        def needs_data(path):
            return torch.rand(2, 3)

        labels = [1, 2, 3]
        Net()(sample_images())
        Labels()(torch.LongTensor(labels))
        Labels()(needs_data("x.pt"))
        Labels()(torch.LongTensor(4, 7))
        """)
    assert shapes(found) == {"Net": ((((5, 3, 8, 8), "float32"),), 18),
                             "Labels": ((((4, 7), "int64"),), 21)}


def test_tensors_passed_by_name_are_placed_in_forward_order():
    from shapecheck.source.inputs import in_forward_order

    found = find_examples(loader.parse(textwrap.dedent("""\
        import torch
        from torch import nn

        class Denoiser(nn.Module):
            pass

        net = Denoiser()
        net(torch.randn(2, 3, 8, 8), labels=torch.randint(0, 5, (2,)), time=torch.rand(2), mask=None)
        """), "m.py"))
    specs, line = found["Denoiser"]
    assert [(s.shape, s.dtype, s.keyword) for s in specs] == [
        ((2, 3, 8, 8), "float32", ""), ((2,), "int64", "labels"), ((2,), "float32", "time")]
    ordered = in_forward_order(specs, ["x", "time", "labels", "scale"])
    assert [(s.shape, s.dtype, s.keyword) for s in ordered] == [
        ((2, 3, 8, 8), "float32", ""), ((2,), "float32", ""), ((2,), "int64", "")]
    assert in_forward_order(specs, ["x", "time", "extra", "labels"]) is None  # `extra` left out before `labels`
    assert in_forward_order(specs, ["x", "time"]) is None  # `labels` is no positional parameter


def test_an_example_with_named_tensors_is_the_models_input(tmp_path):
    from shapecheck.api import check_file

    path = tmp_path / "denoiser.py"
    path.write_text(textwrap.dedent("""\
        import torch
        from torch import nn


        class Denoiser(nn.Module):
            def __init__(self, channels=3, classes=10):
                super().__init__()
                self.conv = nn.Conv2d(channels, 8, 3, padding=1)
                self.time = nn.Linear(1, 8)
                self.label = nn.Embedding(classes, 8)

            def forward(self, x, time, labels=None):
                h = self.conv(x) + self.time(time[:, None])[:, :, None, None]
                return h + self.label(labels)[:, :, None, None]


        if __name__ == "__main__":
            net = Denoiser()
            out = net(torch.randn(2, 3, 16, 16), labels=torch.randint(0, 10, (2,)), time=torch.rand(2))
        """))
    [model] = check_file(str(path)).models
    assert (model.status.value, model.input_source) == ("checked", "example")
    assert (model.input_shapes, model.input_dtypes) == (((2, 3, 16, 16), (2,), (2,)), ("float32", "float32", "int64"))
