"""Diagnostics after a save in the editor: `shapecheck lsp` driven by a real client over stdio.

    python benchmarks/lsp.py [--runs 9]

For a LeNet-sized file (examples/lenet_bug.py) and a ResNet-50-sized one
(benchmarks/models/resnet50.py): open the file and wait for its first diagnostics (the worker's
start, not timed), then `--runs` times change the text (a comment line at the end, so each save
is a new text) and save it; the time from sending didSave to receiving the publishDiagnostics
of that version: the first publish (the findings), and the one whose fixes have been re-checked
(a second publish, when there are findings). Median and range. Targets, for the first:
<= 100 ms (LeNet), <= 500 ms (ResNet-50).

Where the time goes: the same texts checked by a warm `Worker` directly (the process boundary
included, no LSP) and in this process by `api.check_source`, each without and with the fix
proofs (each proposed fix is re-checked before it is called safe). The differences are the
protocol, the worker's pipe, and the proofs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = (("LeNet", "examples/lenet_bug.py", 0.100), ("ResNet-50", "benchmarks/models/resnet50.py", 0.500))


class _Client(LanguageClient):
    """Remembers when each (uri, version) got its diagnostics, and whether their fixes were in."""

    def __init__(self) -> None:
        super().__init__("shapecheck-bench", "1")
        self.arrived: dict[tuple[str, int | None], list[tuple[float, bool]]] = {}
        self.changed = asyncio.Event()

        @self.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(client: _Client, params: types.PublishDiagnosticsParams) -> None:
            final = all(d.data["fixes_checked"] for d in params.diagnostics
                        if d.severity != types.DiagnosticSeverity.Information)
            client.arrived.setdefault((params.uri, params.version), []).append((time.perf_counter(), final))
            client.changed.set()

    async def published(self, uri: str, version: int) -> tuple[float, float]:
        """When the first diagnostics of this version came, and when those with proven fixes came."""
        while not any(final for _, final in self.arrived.get((uri, version), ())):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 600)
        times = self.arrived[(uri, version)]
        return times[0][0], next(t for t, final in times if final)


async def _start() -> _Client:
    client = _Client()
    await client.start_io(sys.executable, "-m", "shapecheck.frontends.cli", "lsp")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    return client


async def _saves(client: _Client, path: str, runs: int) -> tuple[list[float], list[float]]:
    uri, text = from_fs_path(path), open(path, encoding="utf-8").read()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=0, text=text)))
    await client.published(uri, 0)  # the first check waits for the worker to start
    first, fixed = [], []
    for version in range(1, runs + 1):
        edited = text + f"# edit {version}\n"
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text=edited)]))
        sent = time.perf_counter()
        client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri=uri)))
        found, proven = await client.published(uri, version)
        first.append(found - sent)
        fixed.append(proven - sent)
    return first, fixed


async def _through_the_protocol(runs: int) -> dict[str, tuple[list[float], list[float]]]:
    client = await _start()
    try:
        return {label: await _saves(client, os.path.join(ROOT, name), runs) for label, name, _ in FILES}
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()


def _timed(check, runs: int) -> list[float]:
    check()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        check()
        times.append(time.perf_counter() - start)
    return times


def _breakdown(runs: int) -> dict[str, dict[str, list[float]]]:
    sys.path.insert(0, ROOT)
    from shapecheck import api
    from shapecheck.config import Settings
    from shapecheck.worker import Worker

    out: dict[str, dict[str, list[float]]] = {}
    with Worker() as worker:
        for label, name, _ in FILES:
            path = os.path.join(ROOT, name)
            text = open(path, encoding="utf-8").read()
            quick = Settings(prove_fixes=False)
            out[label] = {
                "worker: findings": _timed(lambda: worker.check_source(text, path, quick), runs),
                "worker: with proofs": _timed(lambda: worker.check_source(text, path), runs),
                "in process: findings": _timed(lambda: api.check_source(text, path, quick), runs),
                "in process: w/ proofs": _timed(lambda: api.check_source(text, path), runs),
            }
    return out


def _line(label: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"  {label:<22} median {statistics.median(ms):7.1f} ms   (min {min(ms):.1f}, max {max(ms):.1f}, n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    saves = asyncio.run(_through_the_protocol(args.runs))
    parts = _breakdown(args.runs)
    for label, name, target in FILES:
        first, fixed = saves[label]
        verdict = "met" if statistics.median(first) <= target else "NOT met"
        print(f"{label} ({name}): save -> diagnostics, target <= {target * 1000:.0f} ms: {verdict}")
        print(_line("LSP: diagnostics", first))
        print(_line("LSP: with proven fixes", fixed))
        for part, times in parts[label].items():
            print(_line(part, times))


if __name__ == "__main__":
    main()
