"""`shapecheck lsp`, driven over stdio by a real LSP client (pytest-lsp), as an editor would."""

import asyncio
import os
import sys

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pygls.uris import from_fs_path  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from conftest import EXAMPLES  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVER = [sys.executable, "-m", "shapecheck.frontends.cli", "lsp"]
WAIT = 300  # seconds: a guard against a hang (the worker's first start imports torch), not a benchmark
LENET_BUG = os.path.join(EXAMPLES, "lenet_bug.py")
HANG = """import torch.nn as nn


# shapecheck: input=2,4
class Spin(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        while True:
            pass
"""


async def _session(client: LanguageClient, options=None):
    params = types.InitializeParams(capabilities=client_capabilities("visual-studio-code"),
                                    initialization_options=options)
    await client.initialize_session(params)


@pytest_lsp.fixture(scope="module", loop_scope="module", config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):
    await _session(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="module", loop_scope="module", config=ClientServerConfig(server_command=SERVER))
async def quick(lsp_client: LanguageClient):
    """A server whose deadline is 2 s per model, set by the client."""
    await _session(lsp_client, {"timeout": 2})
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="module", loop_scope="module", config=ClientServerConfig(server_command=SERVER))
async def patient(lsp_client: LanguageClient):
    """A server that would wait ten minutes for a model."""
    await _session(lsp_client, {"timeout": 600})
    yield
    await lsp_client.shutdown_session()


# -- helpers: what an editor does -----------------------------------------------------------------
class Editor:
    def __init__(self, client: LanguageClient, path: str):
        self.client, self.path, self.uri, self.version = client, path, from_fs_path(path), 1

    def open(self, text: str):
        self.text = text
        self.client.diagnostics.pop(self.uri, None)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
            uri=self.uri, language_id="python", version=self.version, text=text)))

    def change(self, text: str, save: bool = True):
        self.text, self.version = text, self.version + 1
        self.client.diagnostics.pop(self.uri, None)
        document = types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            document, [types.TextDocumentContentChangeWholeDocument(text=text)]))
        if save:
            self.client.text_document_did_save(types.DidSaveTextDocumentParams(
                types.TextDocumentIdentifier(uri=self.uri)))

    async def diagnostics(self) -> list[types.Diagnostic]:
        """The findings once their fixes are proven (the server publishes them first without)."""
        async def published():
            while not _final(self.client.diagnostics.get(self.uri)):
                await asyncio.sleep(0.05)
            return list(self.client.diagnostics[self.uri])
        return await asyncio.wait_for(published(), WAIT)

    async def actions(self, diagnostics) -> list[types.CodeAction]:
        whole = types.Range(start=types.Position(0, 0), end=types.Position(len(self.text.splitlines()), 0))
        return await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri), range=whole,
            context=types.CodeActionContext(diagnostics=diagnostics)))

    def close(self):
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(uri=self.uri)))


def _final(diagnostics) -> bool:
    if diagnostics is None:
        return False
    errors = [d for d in diagnostics if d.severity != types.DiagnosticSeverity.Information]
    return not errors or all(d.data["fixes_checked"] for d in errors)


def _offset(text: str, position: types.Position) -> int:
    """An LSP position (UTF-16 units) as an index into ``text``."""
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[:position.line])
    units = 0
    for index, char in enumerate(lines[position.line]):
        if units >= position.character:
            return start + index
        units += 2 if ord(char) > 0xFFFF else 1
    return start + len(lines[position.line])


def _applied(text: str, edit: types.WorkspaceEdit, uri: str) -> str:
    assert list(edit.changes) == [uri]
    for change in sorted(edit.changes[uri], key=lambda e: (e.range.start.line, e.range.start.character),
                         reverse=True):
        text = text[:_offset(text, change.range.start)] + change.new_text + text[_offset(text, change.range.end):]
    return text


def _where(d: types.Diagnostic) -> tuple:
    return d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character


def _copy(tmp_path, text: str, name: str = "lenet_bug.py") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _lenet() -> str:
    with open(LENET_BUG, encoding="utf-8") as handle:
        return handle.read()


# -- diagnostics ---------------------------------------------------------------------------------
async def test_open_publishes_the_files_diagnostics_with_0_based_ranges(client):
    editor = Editor(client, LENET_BUG)
    editor.open(_lenet())
    found = await editor.diagnostics()
    # the CLI says 17:30 (`16 * 5 * 5`) and 24:13 (`x.view(-1, 16 * 5 * 5)`): 1-based lines and columns
    assert [_where(d) for d in found] == [("SC101", 16, 29, 16, 39), ("SC201", 23, 12, 23, 34)]
    linear = found[0]
    assert linear.severity == types.DiagnosticSeverity.Error and linear.source == "shapecheck"
    assert linear.message.startswith("`fc1` expects 400 input features (in_features=16 * 5 * 5) but receives 576")
    assert "max_pool2d (line 23): H: 13→6 (drops 1 row), W: same" in linear.message.splitlines()
    assert linear.code_description.href.endswith("#diagnostic-codes")
    [arrives] = linear.related_information
    assert (arrives.location.uri, arrives.location.range.start.line) == (editor.uri, 24)
    assert arrives.message.startswith("`fc1` is called here with")
    assert linear.data["fix"]["applicability"] == "safe" and linear.data["version"] == 1
    editor.close()


async def test_a_quick_fix_applied_gives_the_fixed_text_and_the_next_save_is_clean(client, tmp_path):
    editor = Editor(client, _copy(tmp_path, _lenet()))
    editor.open(_lenet())
    found = await editor.diagnostics()
    actions = await editor.actions(found)
    fixes = [a for a in actions if a.is_preferred]
    assert [a.title for a in fixes] == [found[0].data["fix"]["title"], found[1].data["fix"]["title"]]
    assert all(a.kind == types.CodeActionKind.QuickFix for a in actions)
    text = editor.text
    for action in fixes:
        text = _applied(text, action.edit, editor.uri)
    expected = _lenet().replace("nn.Linear(16 * 5 * 5, 120)", "nn.Linear(16 * 6 * 6, 120)").replace(
        "x.view(-1, 16 * 5 * 5)", "x.view(x.size(0), -1)")
    assert text == expected
    editor.change(text)
    assert await editor.diagnostics() == []
    editor.close()


async def test_ignore_this_line_appends_the_comment_and_the_finding_goes(client, tmp_path):
    editor = Editor(client, _copy(tmp_path, _lenet()))
    editor.open(_lenet())
    found = await editor.diagnostics()
    actions = await editor.actions([found[0]])
    [ignore] = [a for a in actions if a.title == "Ignore SC101 on this line"]
    text = _applied(editor.text, ignore.edit, editor.uri)
    assert text.splitlines()[16] == "        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # shapecheck: ignore[SC101]"
    editor.change(text, save=False)  # typing, unsaved: checked after a pause
    assert [d.code for d in await editor.diagnostics()] == ["SC201"]
    editor.close()


async def test_columns_count_utf16_units_after_a_character_outside_the_bmp(client, tmp_path):
    emoji = "        tag = '🐍🐍'; x = x.view(-1, 16 * 5 * 5)"
    text = _lenet().replace("        x = x.view(-1, 16 * 5 * 5)", emoji)
    editor = Editor(client, _copy(tmp_path, text))
    editor.open(text)
    [reshape] = [d for d in await editor.diagnostics() if d.code == "SC201"]
    column = emoji.index("x.view")  # in characters; each snake is two UTF-16 units
    assert _where(reshape) == ("SC201", 23, column + 2, 23, column + 2 + len("x.view(-1, 16 * 5 * 5)"))
    [ignore] = [a for a in await editor.actions([reshape]) if a.title.startswith("Ignore")]
    assert _applied(text, ignore.edit, editor.uri).splitlines()[23] == emoji + "  # shapecheck: ignore[SC201]"
    editor.close()


# -- hangs and cancels ---------------------------------------------------------------------------
async def test_a_hanging_model_does_not_block_the_next_save_of_another_file(quick, tmp_path):
    spinning = Editor(quick, _copy(tmp_path, HANG, "spin.py"))
    spinning.open(HANG)
    other = Editor(quick, _copy(tmp_path, _lenet()))
    other.open(_lenet())
    other.change(_lenet().replace("16 * 5 * 5, 120", "16 * 6 * 6, 120"))  # saved while Spin runs
    assert [d.code for d in await other.diagnostics()] == ["SC201"]
    [late] = [d for d in await spinning.diagnostics() if d.code == "SC912"]
    assert late.message.startswith("`Spin` did not finish within 2 s: `forward` (line 1")
    assert late.range.start.line in (10, 11)  # the loop in forward


async def test_a_newer_edit_cancels_the_older_check_of_the_same_file(patient, tmp_path):
    editor = Editor(patient, _copy(tmp_path, HANG, "spin.py"))
    editor.open(HANG)
    await asyncio.sleep(1)
    editor.change(HANG.replace("        while True:\n            pass\n", "        return self.fc(x)\n"))
    assert await editor.diagnostics() == []  # version 2's: the ten-minute check of version 1 was stopped
