"""engine.loader: what is executed, what is not, and that lines and process state stay exact."""

import os
import sys
import ast
import textwrap

import pytest
import torch

from shapecheck.engine import loader
from shapecheck.engine.loader import USER_MODULE_NAME, LoadError

MODELS = os.path.join(os.path.dirname(__file__), "models", "loading")
CASES = os.path.join(MODELS, "loader_cases.py")


def line_of(path, text, start=1):
    """1-based number of the first line at or after `start` that contains `text`."""
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if number >= start and text in line:
                return number
    raise AssertionError(f"{text!r} not in {path}")


def write(tmp_path, text, name="model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def load_text(tmp_path, text, name="model.py"):
    src = loader.parse_file(write(tmp_path, text, name))
    return src, loader.load_report(src)


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "main-ran.txt"
    monkeypatch.setenv("SHAPECHECK_TEST_MARKER", str(path))
    return path


def test_skeleton_keeps_models_constants_and_imports(marker):
    ns = loader.load(loader.parse_file(CASES))
    assert ns["BATCH"] == 16 and ns["HIDDEN"] == 128 and ns["SIZES"] == (16, 1, 28, 28)
    assert ns["LOADED_FROM"] == "sibling"
    assert ns["optional_dep"] is None
    assert ns["device"].type in ("cpu", "cuda")
    assert isinstance(ns["model"], ns["Net"])
    assert [type(m).__name__ for m in ns["seq"]] == ["Linear", "ReLU", "Linear"]
    assert len(ns["mlp"]) == 2 and ns["mlp"][0].in_features == 128


def test_script_parts_are_never_executed(marker, capsys):
    ns = loader.load(loader.parse_file(CASES))
    assert not marker.exists()
    assert "must not run" not in capsys.readouterr().out
    for name in ("data", "loader", "epoch", "sink", "broken"):
        assert name not in ns


def test_skipped_statements_are_reported_with_lines_and_reasons(marker):
    result = loader.load_report(loader.parse_file(CASES))
    found = {s.line: (s.reason, s.failed) for s in result.skipped}
    assert found[line_of(CASES, "data = torch.randn")] == ("calls torch.randn", False)
    assert found[line_of(CASES, "loader = DataLoader")] == ("calls DataLoader", False)
    assert found[line_of(CASES, 'print("this')] == ("bare expression or call", False)
    assert found[line_of(CASES, "torch.manual_seed")] == ("bare expression or call", False)
    assert found[line_of(CASES, "for epoch")] == ("top-level loop", False)
    assert found[line_of(CASES, "with open(os.devnull")] == ("with block", False)
    assert found[line_of(CASES, "broken = ")] == (
        "NameError: name 'undefined_width' is not defined", True)
    main = [s for s in result.skipped if s.reason.startswith("if __name__")]
    assert len(main) == 1
    assert (main[0].line, main[0].end_line) == (line_of(CASES, "if __name__"),
                                                line_of(CASES, "raise SystemExit"))


def test_module_objects_are_built_on_meta_and_device_moves_dropped(marker):
    ns = loader.load(loader.parse_file(CASES))
    for name in ("model", "seq", "mlp"):
        assert {p.device.type for p in ns[name].parameters()} == {"meta"}


def test_methods_carry_the_file_path_and_true_lines(marker):
    src = loader.parse_file(CASES)
    ns = loader.load(src)
    forward = ns["Net"].forward.__code__
    assert forward.co_filename == src.path
    start = line_of(CASES, "class Net")
    assert forward.co_firstlineno == line_of(CASES, "def forward", start)
    view_line = line_of(CASES, "x = x.view(x.size(0), -1)", start)
    assert view_line in {line for _, _, line in forward.co_lines()}
    if hasattr(forward, "co_positions"):
        text = src.lines[view_line - 1]
        columns = {(l, c) for l, _, c, _ in forward.co_positions() if l == view_line}
        assert (view_line, text.index("x.view")) in columns


def test_traceback_of_a_user_method_points_at_the_user_line(tmp_path):
    src, result = load_text(tmp_path, """\
        import torch.nn as nn
        print("dropped")
        x = open("dropped")


        class Bad(nn.Module):
            def forward(self, x):
                return x.view(7, 7)
        """)
    bad = result.namespace["Bad"]()
    with pytest.raises(RuntimeError) as info:
        bad(torch.zeros(2, 3))
    frames = []
    tb = info.value.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    assert (src.path, 8) in frames
    assert loader.user_line(info.value, src.path) == 8


def test_repeated_loads_are_fresh_and_leave_no_state(marker):
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    first = loader.load(loader.parse_file(CASES))
    second = loader.load(loader.parse_file(CASES))
    assert sys.path == path_before
    new = set(sys.modules) - modules_before
    assert USER_MODULE_NAME not in sys.modules
    assert "sibling_blocks" not in new
    assert first["Net"] is not second["Net"]
    assert first["ConvBlock"] is not second["ConvBlock"]
    first["BATCH"] = 99
    assert second["BATCH"] == 16


def test_an_edited_sibling_is_read_again_and_no_bytecode_is_written(tmp_path):
    (tmp_path / "helper_mod.py").write_text("WIDTH = 3\n")
    path = write(tmp_path, "from helper_mod import WIDTH\n")
    assert loader.load(loader.parse_file(path))["WIDTH"] == 3
    (tmp_path / "helper_mod.py").write_text("WIDTH = 5\n")
    assert loader.load(loader.parse_file(path))["WIDTH"] == 5
    assert not (tmp_path / "__pycache__").exists()


def test_relative_imports_work_inside_a_package():
    ns = loader.load(loader.parse_file(os.path.join(MODELS, "pkg", "relnet.py")))
    model = ns["RelNet"]()
    assert model.block.fc.in_features == 4
    assert not [name for name in sys.modules if name == "pkg" or name.startswith("pkg.")]


def test_namespace_has_script_name_and_file(tmp_path):
    src, result = load_text(tmp_path, "NAME = __name__\nFILE = __file__\n")
    assert result.namespace["NAME"] == USER_MODULE_NAME != "__main__"
    assert result.namespace["FILE"] == src.path


def test_future_annotations_apply_to_each_statement(tmp_path):
    _, result = load_text(tmp_path, """\
        from __future__ import annotations

        def f(a: Undefined) -> AlsoUndefined:
            return a
        """)
    assert result.namespace["f"].__annotations__ == {"a": "Undefined", "return": "AlsoUndefined"}
    assert result.skipped == []


def test_simple_if_blocks_keep_their_safe_parts(tmp_path):
    _, result = load_text(tmp_path, """\
        import torch
        if torch.cuda.is_available():
            DEVICE = "cuda"
            print("side effect")
        else:
            DEVICE = "cpu"
        if False:
            WIDTH = 1
        else:
            WIDTH = 2 * 8
        """)
    assert result.namespace["DEVICE"] in ("cuda", "cpu")
    assert result.namespace["WIDTH"] == 16


def test_builders_run_but_trainers_and_downloads_do_not(tmp_path, marker):
    _, result = load_text(tmp_path, f"""\
        import torch.nn as nn

        def make(width):
            layers = [nn.Linear(width, width) for _ in range(2)]
            return nn.Sequential(*layers)

        def fit():
            net = make(4)
            net(None).backward()
            open({str(marker)!r}, "w").write("trained")
            return net

        class Pre(nn.Module):
            def __init__(self, pretrained=False):
                super().__init__()
                open({str(marker)!r}, "w").write("downloaded")

        built = make(4)
        trained = fit()
        pre = Pre(pretrained=True)
        """)
    ns = result.namespace
    assert len(ns["built"]) == 2
    assert "trained" not in ns and "pre" not in ns
    assert not marker.exists()
    reasons = {s.line: s.reason for s in result.skipped}
    assert reasons[19] == "calls fit"
    assert reasons[20] == "loads pretrained weights"


def test_a_name_error_says_which_dropped_line_defined_the_name(tmp_path):
    _, result = load_text(tmp_path, """\
        import argparse
        import torch.nn as nn
        args = argparse.ArgumentParser().parse_args()
        model = nn.Linear(args.width, 2)
        """)
    failed = [s for s in result.skipped if s.failed]
    assert [(s.line, s.reason) for s in failed] == [
        (4, "NameError: name 'args' is not defined (its assignment on line 3 was not run)")]


def test_lambda_bodies_are_not_judged_as_calls(tmp_path):
    _, result = load_text(tmp_path, """\
        import torch
        swish = lambda x: x * torch.sigmoid(x)
        """)
    assert callable(result.namespace["swish"])


def test_syntax_error_has_line_and_column(tmp_path):
    path = write(tmp_path, "import torch\n\ndef f(:\n    pass\n")
    with pytest.raises(LoadError) as info:
        loader.parse_file(path)
    assert (info.value.kind, info.value.line, info.value.column) == ("syntax", 3, 6)
    assert "invalid syntax" in info.value.message


def test_unclosed_bracket_is_reported_where_it_opens(tmp_path):
    with pytest.raises(LoadError) as info:
        loader.parse("x = nn.Linear(4,\n\ny = 2\n", "m.py")
    assert (info.value.kind, info.value.line) == ("syntax", 1)
    assert "never closed" in info.value.message


def test_a_missing_top_level_import_is_skipped_and_named(tmp_path):
    path = write(tmp_path, "import torch\nimport no_such_module_abc\nX = 3\n")
    result = loader.load_report(loader.parse_file(path))
    assert result.namespace["X"] == 3
    assert isinstance(result.namespace["no_such_module_abc"], loader.Unavailable)  # any use: SC907
    (missing,) = result.missing_imports
    assert (missing.line, missing.missing_import, missing.failed) == (2, "no_such_module_abc", True)
    assert "no_such_module_abc" in missing.reason


def test_a_sibling_that_raises_on_import_is_an_exec_load_error(tmp_path):
    (tmp_path / "boom_mod.py").write_text("raise ValueError('no config')\n")
    path = write(tmp_path, "X = 1\nfrom boom_mod import thing\n")
    with pytest.raises(LoadError) as info:
        loader.load(loader.parse_file(path))
    assert (info.value.kind, info.value.line) == ("exec", 2)
    assert "boom_mod" in info.value.message and "no config" in info.value.message
    assert "boom_mod" not in sys.modules


def test_comment_hints_come_from_comments_only():
    src = loader.parse(textwrap.dedent("""\
        TEXT = "# shapecheck: input=(1, 2)"
        # shapecheck: input=(16, 1, 32, 32)
        @decorate
        class Net:  # shapecheck: ignore
            pass
        #   shapecheck:   input=4x3
        X = 1
        """), "m.py")
    assert src.comment_hints == {2: "input=(16, 1, 32, 32)", 4: "ignore", 6: "input=4x3"}
    assert src.hint_for(4) == (2, "input=(16, 1, 32, 32)")
    assert src.hint_for(4, key="ignore") == (4, "ignore")
    assert src.hint_for(7) == (6, "input=4x3")
    assert src.hint_for(1) is None


def test_hint_above_decorators_belongs_to_the_class():
    src = loader.parse("# shapecheck: input=(2, 3)\n@dec\nclass A:\n    pass\n", "m.py")
    assert src.class_lines == {"A": 3}
    assert src.hint_for(3) == (1, "input=(2, 3)")
    blank = loader.parse("# shapecheck: input=(2, 3)\n\nclass A:\n    pass\n", "m.py")
    assert blank.hint_for(3) is None
    both = loader.parse(
        "# shapecheck: input=(2, 3)\n# shapecheck: ignore\nclass A:\n    pass\n", "m.py")
    assert both.hint_for(3) == (1, "input=(2, 3)")


def test_spans_count_characters_and_python_line_breaks():
    """Columns are characters (not UTF-8 bytes); a form feed is not a line break."""
    from shapecheck.engine import locate

    src = loader.parse("import torch.nn as nn\n\x0c\nclass A(nn.Module):\n"
                       "    def __init__(self):\n        super().__init__()\n"
                       "        self.é = nn.Linear(3, 4)  # ü\n", "m.py")
    assert src.class_lines == {"A": 3}
    call = next(n for n in ast.walk(ast.parse(src.source))
                if isinstance(n, ast.Call) and locate._func_name(n.func) == "Linear")
    span = locate.span_of(src, call)
    assert (span.path, span.line, span.column, span.end_line, span.end_column) == ("m.py", 6, 17, 6, 32)
    assert locate.text_of(src, call) == "nn.Linear(3, 4)"



def test_a_required_argument_does_not_stop_the_defaults(tmp_path):
    """`opt = parser.parse_args()` with a required `--dataset`: the defaults of the others hold."""
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent("""\
        import argparse
        import torch.nn as nn

        parser = argparse.ArgumentParser()
        parser.add_argument('--dataset', required=True)
        parser.add_argument('data', help='a positional argument')
        parser.add_argument('--width', type=int, default=8)
        opt = parser.parse_args()
        width = int(opt.width)


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(width, 2)
        """))
    src = loader.parse(path.read_text(), str(path))
    namespace = loader.load(src)
    assert namespace["opt"].width == 8 and namespace["opt"].dataset is None and namespace["width"] == 8
    assert [a.required for a in namespace["parser"]._actions if a.dest == "dataset"] == [True]  # as it was


HINT_SOURCES = [
    'x = "# shapecheck: no"  # shapecheck: input=(1, 2)\n',
    'doc = """\n# shapecheck: inside a string\n"""\n# shapecheck: input=3\n',
    'f = f"{1}#shapecheck: f-string"  # note # shapecheck: not a hint\n',
    'é = "ü#"  ## shapecheck: input=(2, 2)\n',
    'b = b"#shapecheck: bytes"\ny = ("a"\n     "#shapecheck: joined")  # shapecheck: ignore\n',
    'if x:\n    pass  #shapecheck:input=5\n',
]


@pytest.mark.parametrize("source", HINT_SOURCES)
def test_comment_hints_agree_with_pythons_tokenizer(source):
    import io
    import tokenize

    expected = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        body = token.string.lstrip("#").strip()
        if token.type == tokenize.COMMENT and body.startswith("shapecheck:"):
            expected[token.start[0]] = body[len("shapecheck:"):].strip()
    assert loader.parse(source, "m.py").comment_hints == expected


def test_isinstance_against_a_missing_import_is_the_environment(tmp_path):
    from shapecheck import api

    path = write(tmp_path, "import torch.nn as nn\nfrom no_such_pkg_abc import Block\n\n\n"
                           "# shapecheck: input=(2, 4)\nclass Net(nn.Module):\n    def __init__(self):\n"
                           "        super().__init__()\n        self.fc = nn.Linear(4, 4)\n\n"
                           "    def forward(self, x):\n"
                           "        return x if isinstance(self.fc, Block) else self.fc(x)\n")
    codes = [(d.code, d.severity.name) for d in api.check_file(path).diagnostics]
    assert ("SC503", "ERROR") not in codes and ("SC907", "WARNING") in codes


def test_a_required_argument_takes_its_first_choice_or_the_first_value_compared(tmp_path):
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent("""\
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument('--dataset', required=True)
        parser.add_argument('--mode', required=True, choices=['train', 'eval'])
        parser.add_argument('--size', type=int, required=True)
        opt = parser.parse_args()
        if opt.dataset != 'fake' and opt.size == 2:
            pass
        if opt.dataset in ['mnist', 'kmnist']:
            channels = 1
        elif opt.dataset == 'cifar10':
            channels = 3
        """))
    namespace = loader.load(loader.parse(path.read_text(), str(path)))
    assert (namespace["opt"].dataset, namespace["opt"].mode, namespace["opt"].size) == ("mnist", "train", 2)
    assert namespace["channels"] == 1
    assert [a.default for a in namespace["parser"]._actions if a.dest == "dataset"] == [None]  # as it was
