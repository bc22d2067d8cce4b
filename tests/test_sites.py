"""Construction sites read from source text: values written in, argparse defaults, factories,
documentation blocks."""

import ast
import textwrap

import pytest

from shapecheck.source import sites, values


def sites_of(code: str, *names: str) -> list[sites.Site]:
    tree = ast.parse(textwrap.dedent(code))
    return sites.file_sites(tree, "train.py", frozenset(names))


def test_locals_constants_and_dicts_are_written_in():
    found = sites_of("""
        WIDTH = 4
        def main():
            depth = WIDTH * 2
            cfg = dict(width=WIDTH, depth=depth)
            cfg["depth"] = 3
            net = Net(**cfg, act="relu")
    """, "Net")
    assert [(s.text, s.line, s.usable) for s in found] == [("Net(**{'width': 4, 'depth': 3}, act='relu')", 7, True)]


def test_a_field_set_after_parsing_leaves_the_others_known():
    tree = ast.parse(textwrap.dedent("""\
        import argparse, random
        parser = argparse.ArgumentParser()
        parser.add_argument('--ngpu', type=int, default=1)
        parser.add_argument('--seed', type=int)
        opt = parser.parse_args()
        if opt.seed is None:
            opt.seed = random.randint(1, 100)
        ngpu = int(opt.ngpu)
        net = Net(ngpu)
        """))
    (site,) = sites.file_sites(tree, "main.py", frozenset({"Net"}))
    assert site.text == "Net(1)" and site.usable


def test_argparse_defaults_through_a_helper():
    found = sites_of("""
        import argparse
        def get_args():
            parser = argparse.ArgumentParser()
            group = parser.add_argument_group("model")
            group.add_argument("--n-classes", type=int, default="7")
            parser.add_argument("--scale", type=float, default=0.5)
            parser.add_argument("--amp", action="store_true")
            parser.add_argument("--name")
            return parser.parse_args()
        if __name__ == "__main__":
            args = get_args()
            model = Net(args.n_classes, args.scale, args.amp, args.name)
    """, "Net")
    assert found[0].text == "Net(7, 0.5, False, None)"


def test_a_local_of_unknown_value_makes_the_site_unusable():
    found = sites_of("""
        def main(path):
            backbone = load(path)
            a = Net(backbone)
            b = Net(path)
    """, "Net")
    assert [(s.unknown, s.usable) for s in found] == [(("backbone",), False), (("path",), False)]


def test_the_example_of_the_built_model():
    found = sites_of("""
        import torch
        def test():
            net = Net(3)
            y = net(torch.randn(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))
    """, "Net")
    assert [(i.shape, i.dtype) for i in found[0].example] == [((2, 3, 8, 8), "float32"), ((2,), "int64")]


def test_factories_callable_with_their_defaults():
    tree = ast.parse(textwrap.dedent("""
        def small(): return Net(Block, [1, 1])
        def large(pretrained=False, **kwargs):
            model = Net(Block, [2, 2], **kwargs)
            return model
        def chained(): return small().to("cpu")
        def needs(depth): return Net(Block, [depth])
        def _private(): return Net(Block, [1])
        def test(): return Net(Block, [1])
        def other(): return 3
    """))
    found = sites.factories(tree, frozenset({"Net", "Block"}))
    assert found == {"small": ("Net", 2), "large": ("Net", 3), "chained": ("Net", 6)}


def test_markdown_blocks_and_docstring_examples():
    page = "text\n```python\nv = ViT(dim=4)\n```\n```\nnot python ?\n```\n```bash\npip install x\n```\n"
    assert sites.doc_blocks(page) == [(2, "v = ViT(dim=4)"), (5, "not python ?")]
    tree = ast.parse('class A:\n    """Doc.\n\n    >>> a = A(2)\n    >>> a(x)\n    """\n')
    (offset, code), = sites.docstring_blocks(tree)
    assert offset == 1 and code.splitlines()[2] == "a = A(2)"  # file line 1 + 3


@pytest.mark.parametrize("text, expected", [
    ("x = 3 + 4", 7), ("x = (1, 2)[1]", 2), ("x = {'a': 1, **{'b': 2}}", {"a": 1, "b": 2}),
    ("x = 2 ** 3", 8), ("x = 2 ** 100000", values.UNKNOWN), ("x = [i for i in range(3)]", values.UNKNOWN),
    ("x = -1.5", -1.5),
    ("x = int('3') + max(2, 5)", 8), ("x = round(2.6)", 3), ("x = len((1, 2))", 2),
    ("int = float\nx = int(3)", values.UNKNOWN),
])
def test_values(text, expected):
    scope = values.Scope()
    values.follow(ast.parse(text).body, scope)
    assert scope.lookup("x") == expected


def test_every_star_import_is_kept():
    tree = ast.parse("from models import *\nfrom utils import *\nfrom unet import UNet as U\n")
    assert sites.imported_names(tree) == {"*": "models;utils", "U": "unet"}


def test_a_local_bound_to_a_call_is_written_in_where_it_is_read():
    found = sites_of("""
        def main(data):
            conf = Config(**dict(width=8))
            net = Net(conf, depth=2)
            loader = Loader(data)
            other = Net(loader)
    """, "Net")
    assert [(s.text, s.usable) for s in found] == [
        ("Net(Config(**{'width': 8}), depth=2)", True), ("Net(loader)", False)]


def test_the_project_index_reads_a_file_again_only_when_it_changed(tmp_path):
    import os

    from shapecheck.source import project

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "net.py").write_text("import torch.nn as nn\nclass Net(nn.Module):\n    pass\n")
    train = tmp_path / "train.py"
    train.write_text("from net import Net\nmodel = Net()\n")
    first = project.project_sites(str(tmp_path))
    assert [s.text for s in first.sites_for("Net", str(tmp_path / "net.py"))] == ["Net()"]
    tree = project._CACHE.tree(str(train))
    assert project.project_sites(str(tmp_path)).trees[str(train)] is tree  # unchanged: not parsed again
    train.write_text("from net import Net\nmodel = Net()\nother = Net()  # a second site\n")
    os.utime(train, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    again = project.project_sites(str(tmp_path))
    assert [s.line for s in again.sites_for("Net", str(tmp_path / "net.py"))] == [2, 3]


def test_a_loop_over_stated_items_is_read_at_its_first_pass():
    found = sites_of("""
        for bins in (0, 2, 10):
            net = Net(bins=bins)
        last = Net(bins=bins)
        for width, deep in ((8, False), (16, True)):
            Net(width=width, deep=deep)
        for i in range(3, 9, 2):
            Net(bins=i)
        for i in range(0):
            Net(bins=i)
        for item in items:
            Net(bins=item)
    """, "Net")
    assert [(s.text, s.usable) for s in found] == [
        ("Net(bins=0)", True), ("Net(bins=10)", True), ("Net(width=8, deep=False)", True),
        ("Net(bins=3)", True), ("Net(bins=i)", False), ("Net(bins=item)", False)]


def test_imports_inside_blocks_name_where_a_site_reads_from():
    tree = ast.parse(textwrap.dedent("""
        from .layers import Block
        if __name__ == "__main__":
            from pkg import ViT, Block
            Wrapper(ViT(dim=8))
    """))
    assert sites.imported_names(tree) == {"Block": ".layers", "ViT": "pkg"}
    [site] = sites.file_sites(tree, "demo.py", frozenset({"Wrapper"}))
    assert site.imports == (("ViT", "pkg"),)


def test_base_classes_are_member_uses_of_their_subclasses():
    tree = ast.parse("class VanillaVAE(base.BaseVAE, Mixin):\n    pass\n")
    [site] = sites.member_uses(tree, "vae.py", frozenset({"BaseVAE"}))
    assert (site.callee, site.text, site.origin, site.line) == ("BaseVAE", "VanillaVAE", "base", 1)


def test_an_alternative_constructor_is_a_site_of_its_class():
    found = sites_of("""
        cfg = Settings(dim=8)
        model = Transformer.from_settings(cfg).to("cuda")
        Transformer.load_state_dict(state)
    """, "Transformer")
    assert [(s.callee, s.text) for s in found] == [("Transformer", "Transformer.from_settings(Settings(dim=8))")]


def test_command_lines_of_documentation_blocks():
    page = textwrap.dedent("""
        Run it:
        ```bash
        $ python3 tools/train.py --lr=0.1 --batch-size 32 --amp -v  # comment
        torchrun --nproc_per_node=2 main.py --upscale_factor 3
        pip install torch
        ```
        python outside.py --x 1
    """)
    assert sites.command_lines(page) == [("tools/train.py", {"lr": "0.1", "batch_size": "32"}),
                                         ("main.py", {"upscale_factor": "3"})]
