"""Cold start of `shapecheck examples/lenet_bug.py`, against torch's own import floor.

    python benchmarks/startup.py [--runs 5] [--no-profile]

1. Timing: the console script on the buggy LeNet, `python -c "import torch, torch._dynamo"`
   and `python -c "import torch"`, each a fresh process, interleaved (the order rotates every
   round), `--runs` times each after one untimed warm-up round. Medians of wall time and of the
   child's CPU time (user + sys, which suffers less when other work shares the cores).
   Targets: <= 1.15x the torch+dynamo floor; stretch <= 1.3x a bare `import torch`.
2. Where the time goes: one run of the same command under `python -X importtime` with phase
   markers (loader, build, trace, rules, fix re-checks, rendering), split into the part that is
   torch's floor and the part beyond it; then one run under cProfile for shapecheck's own hot
   functions.
"""

from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = "examples/lenet_bug.py"
EXPECTED_EXIT = 1  # the example has shape errors: exit 1 means a full, real check ran
TORCH_ONLY = "import torch"
TORCH_DYNAMO = "import torch, torch._dynamo"
MARK = "@@shapecheck-bench"
# (phase, module, function) wrapped with a timer in the profiled run; outermost phase wins.
PHASES = (
    ("loader", "shapecheck.engine.session", "prepare"),
    ("build", "shapecheck.engine.session", "build_target"),
    ("trace", "shapecheck.engine.session", "trace_target"),
    ("rules", "shapecheck.api", "run_rules"),
    ("fix re-checks", "shapecheck.fixes", "attach_fixes"),
    ("rendering", "shapecheck.render.terminal", "render_report"),
)


# -- running a command -------------------------------------------------------------------
def python() -> str:
    return sys.executable


def console_script() -> str:
    script = os.path.join(os.path.dirname(python()), "shapecheck")
    if not os.path.exists(script):
        raise SystemExit(f"no console script at {script}: install the package in this venv")
    return script


def cases() -> list[tuple[str, list[str], int]]:
    """(label, argv, expected exit code)."""
    return [
        ("shapecheck lenet_bug.py", [console_script(), EXAMPLE], EXPECTED_EXIT),
        ("import torch, torch._dynamo", [python(), "-c", TORCH_DYNAMO], 0),
        ("import torch", [python(), "-c", TORCH_ONLY], 0),
    ]


def run_once(argv: list[str], expected: int | None = None, stderr=None) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process."""
    import subprocess

    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=stderr if stderr is not None else subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if expected is not None and proc.returncode != expected:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}, expected {expected}")
    return wall, usage.ru_utime + usage.ru_stime


# -- 1. interleaved timing ---------------------------------------------------------------
def measure(runs: int) -> dict[str, list[tuple[float, float]]]:
    todo = cases()
    for _, argv, code in todo:  # warm-up: file cache, .pyc files
        run_once(argv, code)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in todo}
    for round_no in range(runs):
        shift = round_no % len(todo)
        for label, argv, code in todo[shift:] + todo[:shift]:
            samples[label].append(run_once(argv, code))
    return samples


def median(values) -> float:
    import statistics
    return statistics.median(values)


def timing_table(samples) -> tuple[str, dict[str, tuple[float, float]]]:
    meds = {label: (median(w for w, _ in s), median(c for _, c in s)) for label, s in samples.items()}
    floor, bare = meds["import torch, torch._dynamo"], meds["import torch"]
    rows = ["| command | runs | wall median (s) | CPU median (s) | × torch+dynamo (wall / CPU) "
            "| × import torch (wall / CPU) |", "|---|---|---|---|---|---|"]
    for label, (wall, cpu) in meds.items():
        rows.append(f"| `{label}` | {len(samples[label])} | {wall:.2f} | {cpu:.2f} | "
                    f"{wall / floor[0]:.2f} / {cpu / floor[1]:.2f} | {wall / bare[0]:.2f} / {cpu / bare[1]:.2f} |")
    return "\n".join(rows), meds


def verdicts(meds) -> str:
    ours = meds["shapecheck lenet_bug.py"]
    lines = []
    for name, base, limit in (("target", "import torch, torch._dynamo", 1.15), ("stretch", "import torch", 1.3)):
        wall, cpu = ours[0] / meds[base][0], ours[1] / meds[base][1]
        verdict = "met" if wall <= limit else "NOT met"
        lines.append(f"- {name} ≤ {limit}× `{base}`: {wall:.2f}× wall, {cpu:.2f}× CPU — {verdict}")
    extra = ours[0] - meds["import torch, torch._dynamo"][0]
    lines.append(f"- beyond the torch+dynamo floor: {extra:+.2f} s wall "
                 f"({ours[1] - meds['import torch, torch._dynamo'][1]:+.2f} s CPU)")
    return "\n".join(lines)


# -- 2a. the profiled child: phases marked on stderr, between -X importtime lines ----------
def _mark(label: str, event: str) -> None:
    os.write(2, f"{MARK} {label} {event} {time.perf_counter():.6f}\n".encode())


def _timed(label: str, func, depth: list[int]):
    def wrapper(*args, **kwargs):
        depth[0] += 1
        if depth[0] == 1:
            _mark(label, "start")
        try:
            return func(*args, **kwargs)
        finally:
            if depth[0] == 1:
                _mark(label, "end")
            depth[0] -= 1
    return wrapper


def install_phase_timers() -> None:
    import importlib
    depth = [0]
    for label, module_name, attr in PHASES:
        module = importlib.import_module(module_name)
        if hasattr(module, attr):
            setattr(module, attr, _timed(label, getattr(module, attr), depth))


def drive(argv: list[str], profile_to: str | None) -> int:
    """The profiled run checks in this process (--no-sandbox), so its phases can be timed here;
    the timed runs of part 1 go through the worker, as users run it."""
    argv = list(argv) + ["--no-sandbox"]
    _mark("driver", "start")
    install_phase_timers()
    from shapecheck.frontends.cli import main
    _mark("main", "start")
    if profile_to:
        import cProfile
        profiler = cProfile.Profile()
        code = profiler.runcall(main, argv)
        profiler.dump_stats(profile_to)
    else:
        code = main(argv)
    _mark("main", "end")
    return code


def module_set(code: str) -> set[str]:
    import subprocess
    out = subprocess.run([python(), "-W", "ignore", "-c", f"{code}; import sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return set(out.split())


# -- 2b. reading the profiled run --------------------------------------------------------
def parse_importtime(lines: list[str]):
    """Import lines (name, depth, self s, cumulative s, phase window) and phase windows."""
    imports, windows, marks, current = [], {}, {}, "startup"
    for line in lines:
        if line.startswith(MARK):
            current = _read_mark(line, windows, marks, current)
        elif line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, cum, name = line[len("import time:"):].split("|")
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            imports.append((name.strip(), depth, int(own) / 1e6, int(cum) / 1e6, current))
    return imports, windows, marks


def _read_mark(line: str, windows: dict, marks: dict, current: str) -> str:
    parts = line.split()
    label, event, stamp = " ".join(parts[1:-2]), parts[-2], float(parts[-1])
    marks[(label, event)] = stamp
    if label in ("driver", "main"):
        return "glue" if (label, event) != ("main", "end") else "exit"
    if event == "start":
        windows.setdefault(label, []).append([stamp, None])
        return label
    windows[label][-1][1] = stamp
    return "glue"


def import_group(name: str, bare: set[str], floor: set[str]) -> str:
    if name in bare:
        return "import torch"
    if name in floor:
        return "torch._dynamo (+ fx.symbolic_shapes, sympy)"
    top = name.split(".")[0]
    if top in ("libcst", "rich", "shapecheck"):
        return f"{top} imports"
    if top == "torch":
        return "torch modules beyond the floor"
    return "other imports (stdlib, site, …)"


def importer_of(imports, target: str) -> str:
    """Who imported `target` (skipping its own submodules), from the post-order listing."""
    for i, (name, depth, _, _, _) in enumerate(imports):
        if name != target:
            continue
        for later, later_depth, *_ in imports[i + 1:]:
            if later_depth < depth and not later.startswith(target + "."):
                return later
            depth = min(depth, later_depth) if later.startswith(target + ".") else depth
        return "shapecheck's code"
    return ""


def phase_rows(imports, windows) -> list[tuple[str, float, float]]:
    """(phase, wall, imports done during it) for every marked phase."""
    rows = []
    for label, _, _ in PHASES:
        spans = windows.get(label, [])
        wall = sum(end - start for start, end in spans if end is not None)
        imported = sum(own for _, _, own, _, window in imports if window == label)
        rows.append((label, wall, imported))
    return rows


def breakdown(stderr_text: str, total: float, spawn: float, bare: set[str], floor: set[str]):
    lines = stderr_text.splitlines()
    imports, windows, marks = parse_importtime(lines)
    groups: dict[str, float] = {}
    for name, _, own, _, _ in imports:
        key = import_group(name, bare, floor)
        groups[key] = groups.get(key, 0.0) + own
    phases = phase_rows(imports, windows)
    start = marks.get(("driver", "start"), spawn)
    return imports, groups, phases, start - spawn, marks


def lazy_torch_notes(imports, bare: set[str], floor: set[str]) -> str:
    """Each lazy top-level import with the beyond-floor torch time in its subtree."""
    found, pending = [], 0.0
    for name, depth, own, _, window in imports:
        if name.startswith("torch") and name not in floor:
            pending += own
        if depth == 0:
            if pending > 0.005 and name not in bare:
                found.append((pending, name, window))
            pending = 0.0
    found.sort(reverse=True)
    return "; ".join(f"{name}: {ms * 1000:.0f} ms ({window})" for ms, name, window in found[:4])


def top_modules(imports, bare: set[str], floor: set[str], key: str, limit: int = 4) -> str:
    own = sorted(((o, n) for n, _, o, _, _ in imports if import_group(n, bare, floor) == key), reverse=True)
    return ", ".join(f"{n} {o * 1000:.0f}" for o, n in own[:limit])


def profile_table(total: float, spawn_cost: float, exit_cost: float, groups: dict, phases, notes: dict) -> str:
    rows = ["| where | ms | share | part of the torch+dynamo floor? | note |", "|---|---|---|---|---|"]

    def add(label, seconds, floor, note=""):
        rows.append(f"| {label} | {seconds * 1000:.0f} | {seconds / total:.0%} | {floor} | {note} |")

    add("python start-up", spawn_cost, "yes")
    for key in sorted(groups, key=groups.get, reverse=True):
        floor = "yes" if key.startswith(("import torch", "torch._dynamo")) else "no"
        add(key, groups[key], floor, notes.get(key, ""))
    accounted = spawn_cost + sum(groups.values())
    for label, wall, imported in phases:
        add(f"{label} (own code, imports excluded)", wall - imported, "no",
            f"wall {wall * 1000:.0f} ms incl. {imported * 1000:.0f} ms of imports")
        accounted += wall - imported
    add("interpreter exit (after main returns)", exit_cost, "partly")
    add("rest (driver, argparse, file read, suppressions)", total - accounted - exit_cost, "no")
    rows.append(f"| **total (one run, -X importtime)** | **{total * 1000:.0f}** | 100% | | |")
    return "\n".join(rows)


def profiled_run() -> tuple[str, float, float]:
    import subprocess
    import tempfile
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        argv = [python(), "-X", "importtime", os.path.abspath(__file__), "--driver", EXAMPLE]
        wall, _ = run_once(argv, EXPECTED_EXIT, stderr=err)
        err.seek(0)
        return err.read().decode("utf-8", "replace"), wall, start


def where_it_goes() -> str:
    bare, floor = module_set(TORCH_ONLY), module_set(TORCH_DYNAMO)
    text, total, spawn = profiled_run()
    imports, groups, phases, spawn_cost, marks = breakdown(text, total, spawn, bare, floor)
    dynamo_by = importer_of(imports, "torch._dynamo")
    dynamo_window = next((w for n, d, _, _, w in imports if n == "torch._dynamo"), "?")
    notes = {
        "torch._dynamo (+ fx.symbolic_shapes, sympy)":
            f"torch._dynamo imported by {dynamo_by} during {dynamo_window}",
        "torch modules beyond the floor": lazy_torch_notes(imports, bare, floor),
        "other imports (stdlib, site, …)": "largest: " + top_modules(imports, bare, floor,
                                                                     "other imports (stdlib, site, …)"),
        "shapecheck imports": "largest: " + top_modules(imports, bare, floor, "shapecheck imports"),
        "libcst imports": _first_window(imports, "libcst"),
        "rich imports": _first_window(imports, "rich"),
    }
    exit_cost = spawn + total - marks.get(("main", "end"), spawn + total)
    return profile_table(total, spawn_cost, exit_cost, groups, phases, notes)


def _first_window(imports, name: str) -> str:
    window = next((w for n, _, _, _, w in imports if n == name), None)
    return f"imported during {window}" if window else "not imported"


# -- 2c. cProfile: shapecheck's own hot spots --------------------------------------------
def hot_functions(limit: int = 12) -> str:
    import pstats
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cli.prof")
        run_once([python(), os.path.abspath(__file__), "--driver", EXAMPLE, "--profile-to", out], EXPECTED_EXIT)
        stats = pstats.Stats(out).stats
    ours = [(tt, ct, nc, f"{_short(path)}:{line} {func}") for (path, line, func), (_, nc, tt, ct, _) in stats.items()
            if f"{os.sep}shapecheck{os.sep}" in path]
    ours.sort(reverse=True)
    rows = ["| shapecheck function, by own time (cProfile, inflated by profiling) | calls | own ms | cumulative ms |",
            "|---|---|---|---|"]
    rows += [f"| `{name}` | {nc} | {tt * 1000:.0f} | {ct * 1000:.0f} |" for tt, ct, nc, name in ours[:limit]]
    return "\n".join(rows)


def _short(path: str) -> str:
    return os.path.relpath(path, ROOT) if path.startswith(ROOT) else path


# -- entry point -------------------------------------------------------------------------
def parse_args(argv: list[str]):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs of each command (default 5)")
    p.add_argument("--no-profile", action="store_true", help="timing only")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    print(f"## Cold start: `shapecheck {EXAMPLE}` vs torch's import floor ({args.runs} interleaved runs each)\n")
    table, meds = timing_table(measure(args.runs))
    print(table + "\n\n" + verdicts(meds) + "\n", flush=True)
    if not args.no_profile:
        print("## Where the time goes (one run under -X importtime, phases timed)\n")
        print(where_it_goes() + "\n", flush=True)
        print("## shapecheck's own functions (one run under cProfile)\n")
        print(hot_functions())
    return 0


def _driver_main(argv: list[str]) -> int:
    profile_to = None
    if "--profile-to" in argv:
        i = argv.index("--profile-to")
        profile_to, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    return drive(argv, profile_to)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        sys.exit(_driver_main(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
