"""`shapecheck lsp`: diagnostics and quick fixes in the editor, over the Language Server Protocol.

    shapecheck lsp [--timeout SECONDS] [--memory MIB]      (needs the `lsp` extra: pygls)

The server checks the editor's text (saved or not) on open, on save and after a pause in
typing, in one warm worker process, and publishes the diagnostics of that file twice when there
are any: first as found, then with their fixes once each fix has been re-checked (the proofs
take most of a check's time, and the editor need not wait for them to show the findings). Only the
newest text of a document counts: a newer edit replaces a waiting check, and a running check it
supersedes is cancelled if it has not finished `GRACE` seconds later (a fresh worker costs more
than that). Checks run one at a time; a hanging model holds the worker only until its deadline.

Each LSP diagnostic carries, in `data`, the edits of its fix and of "ignore this line", in the
client's position units, so code actions need no second check.
"""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from urllib.parse import unquote

from lsprotocol import types
from lsprotocol.converters import get_converter
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from ..worker import Cancelled, Worker

RULES_URL = "https://pypi.org/project/torch-shapecheck/#diagnostic-codes"
DEBOUNCE = 0.3  # seconds without a change before the changed text is checked
GRACE = 1.0  # seconds a superseded check may still take before it is cancelled
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
             "info": types.DiagnosticSeverity.Information}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONVERTER = get_converter()


@dataclass(frozen=True)
class _Request:
    """One text of one document to check."""

    uri: str
    path: str
    text: str
    version: int | None
    proofs: bool = False  # propose fixes and re-check each (the second pass)


class _Checks:
    """Runs checks one at a time in the worker, newest text first per document; publishes results."""

    def __init__(self, worker: Worker, settings, publish, warn) -> None:
        self.worker, self.settings, self.publish, self.warn = worker, settings, publish, warn
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shapecheck-check")
        self._pending: dict[str, _Request] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running: _Request | None = None
        self._task: asyncio.Task | None = None

    def submit(self, request: _Request, delay: float = 0.0) -> None:
        """Check ``request`` after ``delay`` seconds (a later submit of the document restarts the wait)."""
        self.forget(request.uri)
        if delay:
            self._timers[request.uri] = asyncio.get_running_loop().call_later(delay, self._enqueue, request)
        else:
            self._enqueue(request)

    def forget(self, uri: str) -> None:
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        self._pending.pop(uri, None)

    def _enqueue(self, request: _Request) -> None:
        self._timers.pop(request.uri, None)
        running = self._running
        if running is not None and running.uri == request.uri:
            if running.text == request.text:
                return  # the running check answers this one too
            asyncio.get_running_loop().call_later(GRACE, self._cancel, running)
        self._pending[request.uri] = request
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def _cancel(self, request: _Request) -> None:
        if self._running is request:
            self.worker.cancel()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            request = self._pending.pop(next(iter(self._pending)))
            self._running = request
            try:
                report, error = await loop.run_in_executor(self._thread, self._check, request)
            finally:
                self._running = None
            if error:
                self.warn(error)
            if report is not None and request.uri not in self._pending:
                self.publish(request, report)
                if not request.proofs and any(d.severity.value in ("error", "warning") for d in report.diagnostics):
                    self._pending[request.uri] = replace(request, proofs=True)

    def _check(self, request: _Request):
        """(report, "") in the checking thread; (None, why) when there is no report to publish."""
        try:
            settings = replace(self.settings, prove_fixes=request.proofs)
            return self.worker.check_source(request.text, request.path, settings), ""
        except Cancelled:
            return None, ""
        except Exception as exc:  # noqa: BLE001 - shapecheck's own failure: said in the editor, the server goes on
            return None, f"shapecheck could not check {request.path}: {type(exc).__name__}: {exc}"

    async def close(self) -> None:
        for uri in list(self._timers) + list(self._pending):
            self.forget(uri)
        if self._running is not None:
            self.worker.cancel()
        await asyncio.get_running_loop().run_in_executor(self._thread, self.worker.close)
        self._thread.shutdown(wait=False)


# -- shapecheck's diagnostics as LSP diagnostics -----------------------------------------------
def _lines(text: str) -> list[str]:
    """Lines as the LSP counts them: split at \\n, \\r\\n and \\r only."""
    return _LINE_BREAK.split(text)


def _same_file(a: str | None, b: str | None) -> bool:
    return bool(a and b) and os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def _position(lines: list[str], codec, line: int, column: int) -> types.Position:
    """A 1-based line and 0-based character column as an LSP position (the client's units)."""
    return codec.position_to_client_units(lines, types.Position(line=max(line - 1, 0), character=column))


def _range(span, lines: list[str], codec) -> types.Range:
    return types.Range(start=_position(lines, codec, span.line, span.column),
                       end=_position(lines, codec, span.end_line, span.end_column))


class _Texts:
    """The lines of the checked text, and of the other files a report points into."""

    def __init__(self, request: _Request) -> None:
        self.request = request
        self._cache = {os.path.abspath(request.path): _lines(request.text)}

    def uri(self, path: str) -> str:
        """The client's own URI for the checked file (editors spell them differently), else the file's."""
        return self.request.uri if _same_file(path, self.request.path) else from_fs_path(os.path.abspath(path))

    def lines(self, path: str) -> list[str]:
        key = os.path.abspath(path)
        if key not in self._cache:
            try:
                with open(key, encoding="utf-8", errors="replace", newline="") as handle:
                    self._cache[key] = _lines(handle.read())
            except OSError:
                self._cache[key] = []
        return self._cache[key]


def to_lsp(report, request: _Request, codec) -> list[types.Diagnostic]:
    texts = _Texts(request)
    return [_diagnostic(d, texts, codec) for d in report.diagnostics]


def _diagnostic(d, texts: _Texts, codec) -> types.Diagnostic:
    request = texts.request
    here = d.span is not None and _same_file(d.span.path, request.path)
    where = _range(d.span, texts.lines(request.path), codec) if here else types.Range(
        start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    related = [_location(r.span, r.message, texts, codec) for r in d.related if r.span is not None]
    if d.span is not None and not here:
        related.insert(0, _location(d.span, "reported here", texts, codec))
    return types.Diagnostic(
        range=where, message="\n".join((d.message,) + tuple(d.notes)), severity=_SEVERITY[d.severity.value],
        code=d.code, code_description=types.CodeDescription(href=RULES_URL), source="shapecheck",
        related_information=related or None, data=_data(d, texts, codec) if here else None)


def _location(span, message: str, texts: _Texts, codec) -> types.DiagnosticRelatedInformation:
    location = types.Location(uri=texts.uri(span.path), range=_range(span, texts.lines(span.path), codec))
    return types.DiagnosticRelatedInformation(location=location, message=message)


def _data(d, texts: _Texts, codec) -> dict:
    """What code actions need, ready to send back: the fix's and the ignore comment's edits."""
    request = texts.request
    fix = None
    if d.fix is not None and d.fix.edits:
        changes: dict[str, list] = {}
        for edit in d.fix.edits:
            changes.setdefault(texts.uri(edit.span.path), []).append(
                types.TextEdit(range=_range(edit.span, texts.lines(edit.span.path), codec), new_text=edit.new_text))
        fix = {"title": d.fix.title, "applicability": d.fix.applicability.value, "changes": changes}
    ignore = _ignore_edit(d, texts.lines(request.path), codec)
    return _CONVERTER.unstructure({"code": d.code, "version": request.version, "fix": fix,
                                   "fixes_checked": request.proofs, "ignore": [ignore] if ignore else []})


def _ignore_edit(d, lines: list[str], codec) -> types.TextEdit | None:
    from ..suppress import ignore_edit

    if not 1 <= d.span.line <= len(lines):
        return None
    found = ignore_edit(lines[d.span.line - 1], d.code)
    if found is None:
        return None
    start, end, text = found
    span_range = types.Range(start=_position(lines, codec, d.span.line, start),
                             end=_position(lines, codec, d.span.line, end))
    return types.TextEdit(range=span_range, new_text=text)


# -- code actions -----------------------------------------------------------------------------
def code_actions(params: types.CodeActionParams, version: int | None) -> list[types.CodeAction]:
    """The safe fix and "ignore this line" of each shapecheck diagnostic the client sends back."""
    actions = []
    for diagnostic in params.context.diagnostics:
        data = diagnostic.data if diagnostic.source == "shapecheck" else None
        if not isinstance(data, dict) or data.get("version") != version:
            continue  # another tool's, or made for an older text: its edits may no longer fit
        fix = data.get("fix")
        if fix and fix["applicability"] == "safe":
            actions.append(_action(fix["title"], fix["changes"], diagnostic, preferred=True))
        if data.get("ignore"):
            changes = {params.text_document.uri: data["ignore"]}
            actions.append(_action(f"Ignore {data['code']} on this line", changes, diagnostic))
    return actions


def _action(title: str, changes: dict, diagnostic: types.Diagnostic, preferred: bool = False) -> types.CodeAction:
    edit = types.WorkspaceEdit(changes=_CONVERTER.structure(changes, dict[str, list[types.TextEdit]]))
    return types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                            edit=edit, is_preferred=preferred or None)


# -- the server -------------------------------------------------------------------------------
class _Server(LanguageServer):
    def __init__(self, worker: Worker, settings) -> None:
        from .. import __version__

        super().__init__("shapecheck", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.checks = _Checks(worker, settings, self.publish, self.warn)

    def request(self, uri: str) -> _Request | None:
        document = self.workspace.get_text_document(uri)
        if not (document.path or "").endswith(".py") and document.language_id != "python":
            return None
        return _Request(uri, document.path, document.source, document.version)

    def check(self, uri: str, delay: float = 0.0) -> None:
        request = self.request(uri)
        if request is not None:
            self.checks.submit(request, delay)

    def publish(self, request: _Request, report) -> None:
        if unquote(request.uri) not in self.workspace.text_documents:
            return  # closed while it was checked
        diagnostics = to_lsp(report, request, self.workspace.position_codec)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=request.uri, diagnostics=diagnostics, version=request.version))

    def warn(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))


def _settings(base, options) -> object:
    """``initializationOptions`` may set `timeout` (seconds per model)."""
    if isinstance(options, dict) and isinstance(options.get("timeout"), (int, float)):
        return replace(base, timeout=float(options["timeout"]))
    return base


def build_server(worker: Worker, settings) -> _Server:
    server = _Server(worker, settings)
    quick_fix = types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix])

    @server.feature(types.INITIALIZE)
    def initialize(ls: _Server, params: types.InitializeParams) -> None:
        ls.checks.settings = _settings(ls.checks.settings, params.initialization_options)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: _Server, params: types.DidOpenTextDocumentParams) -> None:
        ls.check(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: _Server, params: types.DidChangeTextDocumentParams) -> None:
        ls.check(params.text_document.uri, DEBOUNCE)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: _Server, params: types.DidSaveTextDocumentParams) -> None:
        ls.check(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: _Server, params: types.DidCloseTextDocumentParams) -> None:
        ls.checks.forget(params.text_document.uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                            diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, quick_fix)
    def code_action(ls: _Server, params: types.CodeActionParams) -> list[types.CodeAction]:
        return code_actions(params, ls.workspace.get_text_document(params.text_document.uri).version)

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: _Server, params) -> None:
        await ls.checks.close()

    return server


def serve(timeout: float, memory_mb: int) -> int:
    """Run the server on stdin/stdout until the client says exit; the worker starts at once."""
    from ..config import Settings

    worker = Worker(memory_mb=memory_mb)
    worker.start()  # torch loads there while the editor initializes
    try:
        build_server(worker, Settings(timeout=timeout, memory_mb=memory_mb)).start_io()
    finally:
        worker.close()
    return 0
