"""The import graph of the package: no cycles, and no function-local import that only dodges one.

Module-level imports of alignjax modules must form a DAG; a function-local import of an alignjax module is
allowed only where importing it at the top would *not* close a cycle (it then defers a heavy or optional stack,
e.g. a CLI's plumbing) -- except in the listed CLI modules, which step 4 of issue 10 moves into alignjax/cli/.
Function-local imports of third-party packages are allowed only for the slow or optional ones named here.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / 'alignjax'
# slow to import or optional, needed by few functions: orbax (~1 s, directory checkpoints), tqdm (progress bars),
# PIL / imageio / imageio_ffmpeg (image and video files), torch (only to check exports in tests)
LAZY_OK = {
    'orbax',
    'tqdm',
    'PIL',
    'imageio',
    'imageio_ffmpeg',
    'torch',
    'grain',
    'tensorflow_datasets',
    'scipy',
    'ml_collections',
    'absl',
    'optax',
    'warnings',
    'dataclasses',
    'ml_dtypes',
}
# modules whose function-local imports are not checked (none: every module is)
NOT_CHECKED = ()
# functions allowed to import lazily (none: the CLIs are alignjax/cli/ mains with their imports at the top)
CLI_FUNCTIONS = set()


def _modules():
    mods = {}
    for p in sorted(PKG.rglob('*.py')):
        name = '.'.join(p.relative_to(ROOT).with_suffix('').parts)
        mods[name.removesuffix('.__init__')] = p
    return mods


MODS = _modules()


def _targets(node, mod, is_pkg):
    """The alignjax modules an import statement loads (for `from a.b import c`: a.b.c if it is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODS]
    base = node.module or ''
    if node.level:
        parts = mod.split('.') if is_pkg else mod.split('.')[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = '.'.join(parts + ([node.module] if node.module else []))
    out = []
    for a in node.names:
        full = f'{base}.{a.name}'
        out.append(full if full in MODS else base)
    return [t for t in out if t in MODS]


def _graph():
    top, local = {m: set() for m in MODS}, []
    for mod, path in MODS.items():
        tree = ast.parse(path.read_text())
        is_pkg = path.name == '__init__.py'
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                top[mod].update(_targets(node, mod, is_pkg))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        local.append((mod, fn.name, node, _targets(node, mod, is_pkg)))
    return top, local


def _reaches(graph, start, goal):
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m == goal:
            return True
        if m not in seen:
            seen.add(m)
            todo += graph[m]
    return False


def test_module_level_imports_have_no_cycle():
    top, _ = _graph()
    cycles = [(m, t) for m in top for t in top[m] if t != m and _reaches(top, t, m)]
    assert not cycles, f'import cycles through: {cycles}'


def test_no_function_local_import_dodges_a_cycle():
    top, local = _graph()
    bad = []
    for mod, fn, node, targets in local:
        if mod.startswith(NOT_CHECKED):
            continue
        for t in targets:
            if fn in CLI_FUNCTIONS or t == mod:
                continue
            if _reaches(top, t, mod):
                bad.append(f'{mod}.{fn}: {t} (importing it at the top would close a cycle)')
        if not targets and isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or '']
            for name in names:
                if name.split('.')[0] not in LAZY_OK and not name.startswith('alignjax'):
                    bad.append(f'{mod}.{fn}: lazy import of {name} (not a slow / optional dependency)')
    assert not bad, '\n'.join(bad)


def test_every_module_imports_in_a_fresh_interpreter():
    """Import every module of the package in one fresh process, in sorted order (a cycle that the order of a
    test run hides would raise here), that no module is shadowed by a function of its package, and the old
    import paths."""
    mods = [m for m in MODS if not m.endswith('__main__')]
    code = (
        'import importlib, sys\n'
        f'for m in {mods!r}:\n'
        '    importlib.import_module(m)\n'
        'from alignjax.model import Checkpoint, load_checkpoint\n'
        'import alignjax as aj\n'
        'from alignjax.apps import morph\n'
        'from alignjax.apps.morph import morph as morph2, frames_per_call\n'
        'from alignjax.io.safe_pickle import CheckpointError\n'
        'assert Checkpoint is aj.Checkpoint and load_checkpoint is aj.load_checkpoint\n'
        'assert callable(morph) and morph is morph2 and aj.CheckpointError is CheckpointError\n'
        'assert issubclass(CheckpointError, (aj.AlignjaxError, ValueError))\n'
        # no function shadows the module of the same name (the old module paths are aliases of the renamed ones)
        f'shadowed = [m for m in {mods!r} if "." in m and not isinstance('
        'getattr(sys.modules[m.rsplit(".", 1)[0]], m.rsplit(".", 1)[1], sys), type(sys))]\n'
        'assert not shadowed, shadowed\n'
        'from alignjax.apps.layer_swap import layer_swap\n'
        'from alignjax.apps.translate import translate\n'
        'from alignjax.analysis.morph_quality import morph_quality\n'
        'import alignjax.apps as apps, alignjax.analysis as analysis\n'
        'assert apps.layer_swap is layer_swap and apps.translate is translate\n'
        'assert analysis.morph_quality is morph_quality\n'
    )
    r = subprocess.run(
        [sys.executable, '-c', code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={'JAX_PLATFORMS': 'cpu', 'PATH': '/usr/bin:/bin'},
    )
    assert r.returncode == 0, r.stderr[-3000:]


def test_analysis_imports_alignjax_at_the_top():
    """alignjax.analysis imports the alignjax modules it uses at the top of each module: none of them closes a
    cycle or adds a noticeable stack (the package already loads jax, alignjax.data and the evaluators), so a
    function-local `from alignjax... import` (or `__import__('alignjax...')`) there is only clutter. The
    `if __name__ == '__main__':` shims sit at module level and are not function-local."""
    _, local = _graph()
    analysis = [m for m in MODS if m == 'alignjax.analysis' or m.startswith('alignjax.analysis.')]
    bad = [
        f'{mod}.{fn}: {ast.unparse(node)}'
        for mod, fn, node, targets in local
        if mod in analysis and (targets or any(n.startswith('alignjax') for n in _imported_names(node)))
    ]
    for mod in analysis:
        for node in ast.walk(ast.parse(MODS[mod].read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == '__import__'
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith('alignjax')
            ):
                bad.append(f'{mod}:{node.lineno}: {ast.unparse(node)}')
    assert not bad, 'move these imports to the top of their module:\n' + '\n'.join(bad)


def _imported_names(node):
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [node.module or ''] if not node.level else ['alignjax']  # a relative import is of alignjax


@pytest.mark.parametrize('path', sorted((PKG / 'io').rglob('*.py')), ids=lambda p: str(p.relative_to(PKG)))
def test_io_files_stay_small(path):
    assert len(path.read_text().splitlines()) <= 400


def test_training_imports_no_application():
    """alignjax.train (the training library: `train(config, workdir)`, `run`) imports nothing from alignjax.apps,
    at the top (directly or through another module) or in a function: the demo's application outputs belong to
    its entry point (alignjax.apps.demo.run_demo, alignjax.cli.demo)."""
    top, local = _graph()
    train = [m for m in MODS if m == 'alignjax.train' or m.startswith('alignjax.train.')]
    apps = [m for m in MODS if m == 'alignjax.apps' or m.startswith('alignjax.apps.')]
    bad = [f'{m} -> {a}' for m in train for a in apps if _reaches(top, m, a)]
    bad += [f'{m}.{fn} -> {t}' for m, fn, _, ts in local if m in train for t in ts if t in apps]
    assert not bad, bad
    code = (
        'import sys\nimport alignjax.train.loop, alignjax.train.config, alignjax.train.step\n'
        'assert not [m for m in sys.modules if m.startswith("alignjax.apps")], sorted(sys.modules)\n'
    )
    r = subprocess.run(
        [sys.executable, '-c', code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={'JAX_PLATFORMS': 'cpu', 'PATH': '/usr/bin:/bin'},
    )
    assert r.returncode == 0, r.stderr[-3000:]
