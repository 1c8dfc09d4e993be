"""The notebooks execute top to bottom on CPU (nbclient, the dev extra), with their parameter cell (tagged
`parameters`) shrunk further: the quickstart in the default run (86 s on 2 shared CPU cores), the fine-tuning
notebook under `slow` (249 s: its training step alone compiles for over a minute cold).

Each runs in a fresh kernel in a temporary directory, with one CPU device (the test-wide 8 fake devices are for
the data-parallel tests) and the test-wide compilation cache, so a rerun mostly skips compiling."""

import json
import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')
pytest.importorskip('ipykernel')

NOTEBOOKS = Path(__file__).resolve().parents[1] / 'notebooks'
FAST = {
    'quickstart': 'N = 4\nSTEPS = 10\nFRAMES = 6\nSCALE = 2\n',
    'finetune': 'KIMG = 0.064\nCHUNKS = 2\nSTEPS = 5\nSCALE = 2\n',
}


def execute(name: str, tmp_path: Path, timeout: int = 600):
    nb = nbformat.read(NOTEBOOKS / f'{name}.ipynb', as_version=4)
    tagged = [c for c in nb.cells if 'parameters' in c.get('metadata', {}).get('tags', [])]
    assert len(tagged) == 1, f'{name}: one cell tagged "parameters"'
    tagged[0].source += '\n# test overrides\n' + FAST[name]
    env = dict(os.environ)
    env.pop('XLA_FLAGS', None)
    env['JAX_PLATFORMS'] = 'cpu'
    env.setdefault('PYTHONPATH', str(NOTEBOOKS.parent))
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(tmp_path)}}
    )
    t0 = time.time()
    client.execute(env=env)
    return nb, time.time() - t0


def outputs(nb):
    out = []
    for c in nb.cells:
        if c.cell_type == 'code':
            out += c.get('outputs', [])
    return out


def check_notebook(nb, name, min_images):
    outs = outputs(nb)
    errors = [o for o in outs if o.get('output_type') == 'error']
    assert not errors, errors
    images = [
        o
        for o in outs
        if o.get('output_type') in ('display_data', 'execute_result')
        and any(k.startswith('image/') for k in o.get('data', {}))
    ]
    assert len(images) >= min_images, f'{name}: {len(images)} inline images'
    size = len(json.dumps([dict(o) for o in outs]))
    assert size < 3_000_000, f'{name}: outputs are {size} bytes (keep them small)'
    text = ''.join(o.get('text', '') for o in outs if o.get('output_type') == 'stream')
    assert 'backend' in text  # the first cell says which backend JAX found
    return images


def test_notebooks_are_colab_first():
    for name in FAST:
        nb = nbformat.read(NOTEBOOKS / f'{name}.ipynb', as_version=4)
        first = nb.cells[1].source
        assert 'pip' in first and 'install' in first and 'jax.default_backend()' in first
        src = '\n'.join(c.source for c in nb.cells if c.cell_type == 'code')
        for bad in ('urlopen', 'requests.get', 'wget ', 'curl ', 'hf_hub', 'gdown'):  # no downloads
            assert bad not in src, (name, bad)
        assert all(not c.get('outputs') for c in nb.cells if c.cell_type == 'code'), f'{name}: stored outputs'


def test_quickstart_executes(tmp_path):
    nb, seconds = execute('quickstart', tmp_path)
    images = check_notebook(nb, 'quickstart', min_images=9)
    assert any('image/gif' in o['data'] for o in images)  # the morph, inline as an animation
    print(f'quickstart: {seconds:.0f} s')


@pytest.mark.slow  # 249 s here (2 shared CPU cores, cold training-step compile): over the 3 min budget
def test_finetune_executes(tmp_path):
    nb, seconds = execute('finetune', tmp_path)
    check_notebook(nb, 'finetune', min_images=4)
    assert (tmp_path / 'runs' / 'notebook_child' / 'final').is_dir()
    print(f'finetune: {seconds:.0f} s')
