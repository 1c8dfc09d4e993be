"""StyleGAN2 checkpoint formats -> one canonical raw form (NVlabs stylegan2-ada-pytorch state dicts).

Readers (no PyTorch / TensorFlow needed; every pickle is loaded with the restricted unpickler):

* :func:`read_nvlabs_pkl`     -- stylegan2-ada-pytorch network pickles ``{G, D, G_ema, ...}``
* :func:`read_rosinality_pt`  -- rosinality/stylegan2-pytorch ``torch.save`` checkpoints
* :func:`read_tf_pkl`         -- NVlabs TensorFlow StyleGAN2 / ADA pickles ``(G, D, Gs)``
* :func:`read_raw`            -- dispatch on :func:`detect_format`

Each returns a :class:`RawCheckpoint` whose ``nets`` hold flat state dicts with exactly the names,
shapes and layouts that ``G.state_dict()`` / ``D.state_dict()`` of stylegan2-ada-pytorch have, and
whose ``config`` is inferred from the tensors (plus constructor kwargs where the file stores them).

Writer: :func:`write_rosinality_pt` (inverse of :func:`read_rosinality_pt`).
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .safe_pickle import CheckpointError, PersistentModule, TFNetwork, corrupt_error, load_pickle
from .torch_file import is_torch_legacy, is_torch_zip, load_torch, save_torch

__all__ = [
    "RawCheckpoint",
    "detect_format",
    "read_raw",
    "read_nvlabs_pkl",
    "read_rosinality_pt",
    "read_tf_pkl",
    "write_rosinality_pt",
    "infer_config",
    "expected_shapes",
    "default_resample_filter",
    "ORBAX_MARKER",
]

ORBAX_MARKER = "alignjax_config.json"
NET_NAMES = ("G", "G_ema", "D")
# first keys of NVlabs network pickles (training snapshots start with training_set_kwargs)
NVLABS_TOP_KEYS = NET_NAMES + ("training_set_kwargs", "augment_pipe")
DEFAULT_MAPPING_LR_MUL = 0.01
ROSINALITY_MBSTD_GROUP = 4
ROSINALITY_MBSTD_CHANNELS = 1


@dataclass
class RawCheckpoint:
    """A checkpoint in canonical form.

    nets:   ``{'G' | 'G_ema' | 'D': {name: ndarray}}`` -- stylegan2-ada-pytorch state dicts
            (float32, C-contiguous, independent copies), in ``state_dict()`` order.
    config: architecture hyper-parameters inferred from the tensors (see :func:`infer_config`).
    notes:  human-readable remarks (e.g. "latent_avg absent: ...").
    source: 'nvlabs' | 'rosinality' | 'tf'.
    extra:  anything else worth keeping (``augment_p``, ``init_kwargs``, ``training_set_kwargs``).
    """

    nets: dict[str, dict[str, np.ndarray]]
    config: dict
    notes: list[str] = field(default_factory=list)
    source: str = ""
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# small helpers


def default_resample_filter(taps=(1, 3, 3, 1)) -> np.ndarray:
    """The 2-D resampling filter buffer that stylegan2-ada-pytorch registers (``setup_filter``)."""
    f = np.asarray(taps, dtype=np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    return (f / f.sum()).astype(np.float32)


def _f32(x: Any) -> np.ndarray:
    return np.array(x, dtype=np.float32, copy=True, order="C")


def _shape(x: Any) -> tuple:
    return tuple(int(s) for s in np.shape(x))


def _is_array(x: Any) -> bool:
    """ndarray, numpy scalar, or an array-like with shape and dtype (e.g. a jax.Array)."""
    return isinstance(x, (np.ndarray, np.generic)) or (
        hasattr(x, "__array__") and hasattr(x, "shape") and hasattr(x, "dtype"))


class _Src:
    """Read-only view of a source state dict that reports missing keys / wrong shapes clearly
    and remembers what was consumed."""

    def __init__(self, sd: Mapping[str, Any], path: str, label: str):
        self.sd = sd
        self.path = path
        self.label = label
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.sd

    def get(self, key: str, shape: tuple | None = None) -> np.ndarray:
        if key not in self.sd:
            raise CheckpointError(f"{self.path}: {self.label} is missing key '{key}'")
        value = self.sd[key]
        if not _is_array(value):
            raise CheckpointError(f"{self.path}: {self.label} key '{key}' is {type(value).__name__}, expected a tensor")
        value = np.asarray(value)
        if shape is not None and _shape(value) != tuple(shape):
            raise CheckpointError(
                f"{self.path}: {self.label} key '{key}' has shape {_shape(value)}, expected {tuple(shape)}"
            )
        self.used.add(key)
        return value

    def unused(self) -> list[str]:
        return [k for k in self.sd if k not in self.used]


def _indices(keys, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.fullmatch(k))})


# --------------------------------------------------------------------------------------------
# architecture schema (stylegan2-ada-pytorch names, shapes and state_dict order)


def _mapping_shapes(prefix: str, z_dim: int, c_dim: int, w_dim: int, embed: int | None, layers: int,
                    w_avg: bool) -> list[tuple[str, tuple | None]]:
    out: list[tuple[str, tuple | None]] = []
    if w_avg:
        out.append((f"{prefix}w_avg", (w_dim,)))
    feat_in = z_dim
    if c_dim:
        out += [(f"{prefix}embed.weight", (embed, c_dim)), (f"{prefix}embed.bias", (embed,))]
        feat_in += embed
    for i in range(layers):
        out += [(f"{prefix}fc{i}.weight", (w_dim, feat_in if i == 0 else w_dim)), (f"{prefix}fc{i}.bias", (w_dim,))]
    return out


def _g_shapes(cfg: dict) -> list[tuple[str, tuple | None]]:
    """Ordered (key, shape) list of an NVlabs skip Generator state dict (shape None: any 2-D filter)."""
    res = cfg["resolution"]
    ch = cfg["g_channels"]
    w, nc = cfg["w_dim"], cfg["img_channels"]
    out: list[tuple[str, tuple | None]] = []
    for r in _block_resolutions(res, ascending=True):
        b = f"synthesis.b{r}."
        c = ch[r]
        if r == 4:
            out.append((b + "const", (c, 4, 4)))
        out.append((b + "resample_filter", None))
        convs = [("conv1", c)] if r == 4 else [("conv0", ch[r // 2]), ("conv1", c)]
        for name, cin in convs:
            p = b + name + "."
            out += [
                (p + "weight", (c, cin, 3, 3)),
                (p + "noise_strength", ()),
                (p + "bias", (c,)),
                (p + "resample_filter", None),
                (p + "noise_const", (r, r)),
                (p + "affine.weight", (cin, w)),
                (p + "affine.bias", (cin,)),
            ]
        p = b + "torgb."
        out += [(p + "weight", (nc, c, 1, 1)), (p + "bias", (nc,)), (p + "affine.weight", (c, w)),
                (p + "affine.bias", (c,))]
    out += _mapping_shapes("mapping.", cfg["z_dim"], cfg["c_dim"], w, cfg["embed_features"], cfg["mapping_layers"],
                           w_avg=True)
    return out


def _d_shapes(cfg: dict) -> list[tuple[str, tuple | None]]:
    res = cfg["resolution"]
    ch = cfg["d_channels"]
    nc = cfg["img_channels"]
    out: list[tuple[str, tuple | None]] = []
    for r in _block_resolutions(res, ascending=False):
        b = f"b{r}."
        c, c2 = ch[r], ch[r // 2]
        out.append((b + "resample_filter", None))
        if r == res:
            out += [(b + "fromrgb.weight", (c, nc, 1, 1)), (b + "fromrgb.bias", (c,)), (b + "fromrgb.resample_filter", None)]
        out += [
            (b + "conv0.weight", (c, c, 3, 3)), (b + "conv0.bias", (c,)), (b + "conv0.resample_filter", None),
            (b + "conv1.weight", (c2, c, 3, 3)), (b + "conv1.bias", (c2,)), (b + "conv1.resample_filter", None),
            (b + "skip.weight", (c2, c, 1, 1)), (b + "skip.resample_filter", None),
        ]
    cmap = cfg["cmap_dim"] or 0
    if cfg["c_dim"]:
        out += _mapping_shapes("mapping.", 0, cfg["c_dim"], cmap, cmap, cfg["d_mapping_layers"], w_avg=False)
    c4 = ch[4]
    out += [
        ("b4.conv.weight", (c4, c4 + cfg["mbstd_num_channels"], 3, 3)), ("b4.conv.bias", (c4,)),
        ("b4.conv.resample_filter", None),
        ("b4.fc.weight", (c4, c4 * 16)), ("b4.fc.bias", (c4,)),
        ("b4.out.weight", (cmap if cmap else 1, c4)), ("b4.out.bias", (cmap if cmap else 1,)),
    ]
    return out


def expected_shapes(config: dict) -> dict[str, dict[str, tuple | None]]:
    """``{'G': {key: shape}, 'D': {...}}`` for ``config`` (shape None for resample-filter buffers)."""
    out: dict[str, dict[str, tuple | None]] = {}
    if config.get("g_channels"):
        out["G"] = dict(_g_shapes(config))
    if config.get("d_channels"):
        out["D"] = dict(_d_shapes(config))
    return out


def _block_resolutions(res: int, ascending: bool) -> list[int]:
    rs = [2 ** i for i in range(2, int(round(math.log2(res))) + 1)]
    return rs if ascending else [r for r in reversed(rs) if r > 4]


def _canonicalize(sd: Mapping[str, np.ndarray], schema: list[tuple[str, tuple | None]], path: str, label: str,
                  notes: list[str], optional: set[str] = frozenset()) -> "collections.OrderedDict[str, np.ndarray]":
    """Check ``sd`` against the schema; return float32 copies in state_dict order."""
    out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for key, shape in schema:
        if key not in sd:
            if key in optional:
                continue
            raise CheckpointError(f"{path}: {label} is missing key '{key}'" +
                                  (f" (expected shape {shape})" if shape is not None else ""))
        value = sd[key]
        if not _is_array(value):
            raise CheckpointError(f"{path}: {label} key '{key}' is {type(value).__name__}, expected a tensor")
        value = np.asarray(value)
        if shape is None:
            if value.ndim != 2 or value.shape[0] != value.shape[1]:
                raise CheckpointError(f"{path}: {label} key '{key}' has shape {_shape(value)}, expected a square 2-D filter")
        elif _shape(value) != tuple(shape):
            raise CheckpointError(f"{path}: {label} key '{key}' has shape {_shape(value)}, expected {tuple(shape)}")
        out[key] = _f32(value)
    extra = [k for k in sd if k not in out and k not in optional]
    if extra:
        for k in extra:
            if _is_array(sd[k]):
                out[k] = _f32(sd[k])
        notes.append(f"{label}: kept {len(extra)} key(s) outside the StyleGAN2 schema: {', '.join(extra[:8])}"
                     + (" ..." if len(extra) > 8 else ""))
    return out


# --------------------------------------------------------------------------------------------
# config inference (from NVlabs-named state dicts)


def _infer_g(sd: Mapping[str, np.ndarray], path: str, label: str) -> dict:
    keys = list(sd)
    if any(k.startswith("synthesis.input.") or re.match(r"synthesis\.L\d+_", k) for k in keys):
        raise CheckpointError(f"{path}: {label} is a StyleGAN3 generator, which is not supported (StyleGAN2 only)")
    src = _Src(sd, path, label)
    rs = _indices(keys, r"synthesis\.b(\d+)\..*")
    if not rs:
        src.get("synthesis.b4.const")  # raises: missing key
    res = max(rs)
    if res < 4 or res & (res - 1) or rs != _block_resolutions(res, ascending=True):
        raise CheckpointError(f"{path}: {label} has synthesis blocks {rs}, expected 4, 8, ..., {res}")
    torgb = [r for r in rs if f"synthesis.b{r}.torgb.weight" in sd]
    if any(f"synthesis.b{r}.skip.weight" in sd for r in rs):
        arch = "resnet"
    elif torgb == rs:
        arch = "skip"
    else:
        arch = "orig"
    if arch != "skip":
        raise CheckpointError(
            f"{path}: {label} uses the '{arch}' generator architecture; only the StyleGAN2 'skip' "
            "generator is supported"
        )
    img_channels = _shape(src.get(f"synthesis.b{res}.torgb.weight"))[0]
    g_channels = {r: _shape(src.get(f"synthesis.b{r}.conv1.weight"))[0] for r in rs}
    w_dim = _shape(src.get("synthesis.b4.conv1.affine.weight"))[1]
    fcs = _indices(keys, r"mapping\.fc(\d+)\.weight")
    if fcs != list(range(len(fcs))) or not fcs:
        raise CheckpointError(f"{path}: {label} mapping layers {fcs} are not fc0..fc(N-1)")
    c_dim, embed = 0, None
    if "mapping.embed.weight" in sd:
        embed, c_dim = _shape(src.get("mapping.embed.weight"))
    fc0_in = _shape(src.get("mapping.fc0.weight"))[1]
    z_dim = fc0_in - (embed or 0)
    n_conv = sum(1 for r in rs for n in ("conv0", "conv1") if f"synthesis.b{r}.{n}.weight" in sd)
    return dict(
        resolution=res,
        img_channels=img_channels,
        z_dim=z_dim,
        w_dim=w_dim,
        c_dim=c_dim,
        num_ws=n_conv + 1,
        mapping_layers=len(fcs),
        embed_features=embed,
        g_channels=g_channels,
        architecture=arch,
    )


def _infer_d(sd: Mapping[str, np.ndarray], path: str, label: str) -> dict:
    keys = list(sd)
    src = _Src(sd, path, label)
    rs = _indices(keys, r"b(\d+)\..*")
    if not rs or 4 not in rs:
        src.get("b4.conv.weight")  # raises
    res = max(rs)
    if res & (res - 1) or rs != _block_resolutions(res, ascending=True):
        raise CheckpointError(f"{path}: {label} has blocks {rs}, expected 4, 8, ..., {res}")
    upper = [r for r in rs if r > 4]
    fromrgb = [r for r in upper if f"b{r}.fromrgb.weight" in sd]
    skip = [r for r in upper if f"b{r}.skip.weight" in sd]
    if "b4.fromrgb.weight" in sd or len(fromrgb) > 1:
        arch = "skip"
    elif skip == upper:
        arch = "resnet"
    else:
        arch = "orig"
    if arch != "resnet":
        raise CheckpointError(
            f"{path}: {label} uses the '{arch}' discriminator architecture; only the StyleGAN2 'resnet' "
            "discriminator is supported"
        )
    d_channels = {r: _shape(src.get(f"b{r}.conv0.weight"))[0] for r in upper}
    conv4 = _shape(src.get("b4.conv.weight"))
    d_channels[4] = conv4[0]
    d_channels = dict(sorted(d_channels.items()))
    img_channels = _shape(src.get(f"b{res}.fromrgb.weight"))[1]
    c_dim, cmap = 0, 0
    if "mapping.embed.weight" in sd:
        c_dim = _shape(src.get("mapping.embed.weight"))[1]
        cmap = _shape(src.get("b4.out.weight"))[0]
    fcs = _indices(keys, r"mapping\.fc(\d+)\.weight")
    return dict(
        resolution=res,
        img_channels=img_channels,
        c_dim=c_dim,
        d_channels=d_channels,
        mbstd_num_channels=conv4[1] - d_channels[4],
        cmap_dim=cmap,
        d_mapping_layers=len(fcs) if c_dim else 0,
        d_architecture=arch,
    )


def infer_config(nets: Mapping[str, Mapping[str, np.ndarray]], *, path: str = "<checkpoint>",
                 hints: Mapping[str, Any] | None = None) -> dict:
    """Infer the architecture config from NVlabs-named state dicts.

    ``hints`` supplies what tensors cannot tell (``mbstd_group_size``, ``conv_clamp``,
    ``mapping_lr_mul``, ``channel_base``, ``channel_max``); they are merged in afterwards.
    """
    hints = dict(hints or {})
    g_label = next((n for n in ("G_ema", "G") if n in nets), None)
    cfg: dict[str, Any] = {}
    g_cfgs = {n: _infer_g(nets[n], path, n) for n in ("G_ema", "G") if n in nets}
    if len(g_cfgs) == 2 and g_cfgs["G"] != g_cfgs["G_ema"]:
        raise CheckpointError(f"{path}: G and G_ema have different architectures: {g_cfgs['G']} vs {g_cfgs['G_ema']}")
    if g_label:
        cfg.update(g_cfgs[g_label])
    d_cfg = _infer_d(nets["D"], path, "D") if "D" in nets else None
    if d_cfg is not None:
        if g_label:
            for k in ("resolution", "img_channels", "c_dim"):
                if d_cfg[k] != cfg[k]:
                    raise CheckpointError(f"{path}: D has {k}={d_cfg[k]} but {g_label} has {k}={cfg[k]}")
        else:
            cfg.update(resolution=d_cfg["resolution"], img_channels=d_cfg["img_channels"], c_dim=d_cfg["c_dim"],
                       z_dim=None, w_dim=None, num_ws=None, mapping_layers=None, embed_features=None,
                       g_channels=None, architecture=None)
        cfg.update({k: d_cfg[k] for k in ("d_channels", "mbstd_num_channels", "cmap_dim", "d_mapping_layers",
                                          "d_architecture")})
    else:
        cfg.update(d_channels=None, mbstd_num_channels=None, cmap_dim=None, d_mapping_layers=None,
                   d_architecture=None)
    if not g_label and d_cfg is None:
        raise CheckpointError(f"{path}: no networks (G, G_ema, D) found")
    cfg["mbstd_group_size"] = hints.pop("mbstd_group_size", None) if d_cfg is not None else None
    if d_cfg is not None and cfg["mbstd_num_channels"] == 0:
        cfg["mbstd_group_size"] = None
    cfg["conv_clamp"] = hints.pop("conv_clamp", None)
    cfg["mapping_lr_mul"] = hints.pop("mapping_lr_mul", DEFAULT_MAPPING_LR_MUL)
    for k, v in hints.items():
        if v is not None:
            cfg[k] = v
    order = ["resolution", "img_channels", "z_dim", "w_dim", "c_dim", "num_ws", "mapping_layers", "embed_features",
             "g_channels", "d_channels", "mbstd_group_size", "mbstd_num_channels", "cmap_dim", "d_mapping_layers",
             "architecture", "d_architecture", "conv_clamp", "mapping_lr_mul"]
    return {k: cfg[k] for k in order} | {k: v for k, v in cfg.items() if k not in order}


def _finish(nets: dict[str, Mapping[str, np.ndarray]], *, path: str, source: str, hints: dict, notes: list[str],
            extra: dict) -> RawCheckpoint:
    if not nets:
        raise CheckpointError(f"{path}: no networks (G, G_ema, D) found")
    config = infer_config(nets, path=path, hints=hints)
    schema_g = _g_shapes(config) if config.get("g_channels") else None
    schema_d = _d_shapes(config) if config.get("d_channels") else None
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in NET_NAMES:
        if name not in nets:
            continue
        schema = schema_d if name == "D" else schema_g
        optional = {"mapping.w_avg"} if name != "D" else set()
        out[name] = _canonicalize(nets[name], schema, path, name, notes, optional)
    if any(n in out and "mapping.w_avg" not in out[n] for n in ("G", "G_ema")):
        if not any("latent_avg absent" in n or "w_avg absent" in n for n in notes):
            notes.append("mapping.w_avg absent: compute it as the mean of mapping(z) over 10,000 random z")
    return RawCheckpoint(nets=out, config=config, notes=notes, source=source, extra=extra)


# --------------------------------------------------------------------------------------------
# format detection


def _sniff_pickle(head: bytes) -> str | None:
    """Guess nvlabs / tf from the first opcodes of a pickle (no objects are built)."""
    strings: list[str] = []
    first = None
    depth_dict = False
    try:
        for i, (op, arg, _pos) in enumerate(pickletools.genops(io.BytesIO(head))):
            if i > 64:
                break
            name = op.name
            if name in ("PROTO", "FRAME", "MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                continue
            if first is None and name != "MARK":
                first = name
                if name == "GLOBAL" and isinstance(arg, str) and arg.replace(" ", ".") == "dnnlib.tflib.network.Network":
                    return "tf"
                depth_dict = name in ("EMPTY_DICT", "DICT")
            if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
                if strings[-2:] == ["dnnlib.tflib.network", "Network"] and len(strings) == 2:
                    return "tf"
                if depth_dict and len(strings) == 1 and arg in NVLABS_TOP_KEYS:
                    return "nvlabs"
    except Exception:  # truncated head / not a pickle
        return None
    return None


def detect_format(path: str | os.PathLike) -> str:
    """'nvlabs' | 'rosinality' | 'tf' | 'orbax' from the file's content (never from its name)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, ORBAX_MARKER)):
            return "orbax"
        raise CheckpointError(f"{path}: directory without '{ORBAX_MARKER}' is not an alignjax checkpoint store")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from exc
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): truncated or corrupt")
    if is_torch_zip(head):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise corrupt_error(path, exc) from exc
        if not any(n.endswith("/data.pkl") and n.count("/") == 1 for n in names):
            raise CheckpointError(f"{path}: zip file without a torch 'data.pkl' record is not a known checkpoint format")
        return "rosinality"
    if is_torch_legacy(head):
        return "rosinality"
    guess = _sniff_pickle(head)
    if guess:
        return guess
    if not head.startswith(b"\x80"):
        raise CheckpointError(f"{path}: unknown checkpoint format (not a pickle, torch.save file or orbax store)")
    # an unusual pickle layout: decide from the restricted load of the whole object
    return _classify(load_pickle(path), path)


def _classify(obj: Any, path: str) -> str:
    if isinstance(obj, dict) and any(k in obj for k in NET_NAMES):
        return "nvlabs"
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, TFNetwork) for o in obj):
        return "tf"
    if isinstance(obj, dict) and ("g_ema" in obj or "g" in obj or "d" in obj):
        return "rosinality"
    raise CheckpointError(f"{path}: unknown checkpoint format (top-level object is {type(obj).__name__})")


def read_raw(path: str | os.PathLike, format: str | None = None) -> RawCheckpoint:
    """Read any supported checkpoint into a :class:`RawCheckpoint`."""
    path = os.fspath(path)
    fmt = format or detect_format(path)
    if fmt == "nvlabs":
        return read_nvlabs_pkl(path)
    if fmt == "rosinality":
        return read_rosinality_pt(path)
    if fmt == "tf":
        return read_tf_pkl(path)
    if fmt == "orbax":
        raise CheckpointError(f"{path}: is an alignjax orbax store; load it with the alignjax model API, not read_raw")
    raise CheckpointError(f"{path}: unknown checkpoint format {fmt!r}")


# --------------------------------------------------------------------------------------------
# NVlabs stylegan2-ada-pytorch pickles


def _plain(x: Any) -> Any:
    """Plain python copy of pickled kwargs (EasyDict -> dict, numpy scalars -> python)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x) if isinstance(x, list) else tuple(_plain(v) for v in x)
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (str, int, float, bool, type(None))):
        return x
    return repr(x)


def read_nvlabs_pkl(path: str | os.PathLike) -> RawCheckpoint:
    """stylegan2-ada-pytorch network pickle (``{'G', 'D', 'G_ema', 'augment_pipe', ...}``)."""
    path = os.fspath(path)
    data = load_torch(path)  # plain pickle with torch storages inside (restricted)
    if not isinstance(data, dict) or not any(k in data for k in NET_NAMES):
        raise CheckpointError(f"{path}: not an NVlabs network pickle (expected a dict with G / D / G_ema)")
    notes: list[str] = []
    extra: dict[str, Any] = {}
    nets: dict[str, dict] = {}
    modules: dict[str, PersistentModule] = {}
    for name in NET_NAMES:
        mod = data.get(name)
        if mod is None:
            continue
        if not isinstance(mod, PersistentModule):
            raise CheckpointError(f"{path}: '{name}' is {type(mod).__name__}, expected a persistent network module")
        expected = "Discriminator" if name == "D" else "Generator"
        if mod.class_name != expected:
            raise CheckpointError(f"{path}: '{name}' is a {mod.class_name}, expected a {expected}")
        modules[name] = mod
        nets[name] = mod.state_dict()
    for name in NET_NAMES:
        if name not in nets:
            notes.append(f"{name} absent from the pickle")

    hints: dict[str, Any] = {}
    g = modules.get("G_ema") or modules.get("G")
    if g is not None:
        kw = g.init_kwargs
        synth = kw.get("synthesis_kwargs") or {}
        mapk = kw.get("mapping_kwargs") or {}
        if "conv_clamp" in synth:
            hints["conv_clamp"] = _plain(synth["conv_clamp"])
        lr = None
        try:
            lr = g.mapping.fc0.init_kwargs.get("lr_multiplier")
        except AttributeError:
            pass
        if lr is None:
            lr = mapk.get("lr_multiplier")
        if lr is not None:
            hints["mapping_lr_mul"] = float(lr)
        for k in ("channel_base", "channel_max"):
            if k in synth:
                hints[k] = int(synth[k])
        if "num_fp16_res" in synth:
            hints["num_fp16_res"] = int(synth["num_fp16_res"])
        extra.setdefault("init_kwargs", {})
        for n in ("G", "G_ema"):
            if n in modules:
                extra["init_kwargs"][n] = _plain(modules[n].init_kwargs)
    d = modules.get("D")
    if d is not None:
        kw = d.init_kwargs
        extra.setdefault("init_kwargs", {})["D"] = _plain(kw)
        group = None
        try:
            mbstd = d.b4.mbstd
        except AttributeError:
            mbstd = None
        if isinstance(mbstd, PersistentModule):
            group = mbstd.state.get("group_size", mbstd.init_kwargs.get("group_size"))
        else:
            group = (kw.get("epilogue_kwargs") or {}).get("mbstd_group_size", 4)
        hints["mbstd_group_size"] = None if group is None else int(group)
        if g is None:
            if "conv_clamp" in kw:
                hints["conv_clamp"] = _plain(kw["conv_clamp"])
            for k in ("channel_base", "channel_max"):
                if k in kw:
                    hints[k] = int(kw[k])
        elif "conv_clamp" in kw and _plain(kw["conv_clamp"]) != hints.get("conv_clamp"):
            hints["d_conv_clamp"] = _plain(kw["conv_clamp"])

    aug = data.get("augment_pipe")
    if isinstance(aug, PersistentModule):
        p = aug.state_dict().get("p")
        if p is not None:
            extra["augment_p"] = float(np.asarray(p).reshape(-1)[0])
        extra["augment_kwargs"] = _plain(aug.init_kwargs)
    tsk = data.get("training_set_kwargs")
    if tsk is not None:
        extra["training_set_kwargs"] = _plain(tsk)
    return _finish(nets, path=path, source="nvlabs", hints=hints, notes=notes, extra=extra)


# --------------------------------------------------------------------------------------------
# rosinality stylegan2-pytorch


def _ros_g_names(res: int) -> list[tuple[str, str]]:
    """(nvlabs layer prefix, rosinality layer prefix) of every modulated layer, in rosinality's order."""
    convs, rgbs = [], []
    for r in _block_resolutions(res, ascending=True)[1:]:
        k = int(math.log2(r)) - 3
        convs += [(f"synthesis.b{r}.conv0", f"convs.{2 * k}"), (f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}")]
        rgbs.append((f"synthesis.b{r}.torgb", f"to_rgbs.{k}"))
    # rosinality's state_dict order: conv1, to_rgb1, convs.*, to_rgbs.*
    return [("synthesis.b4.conv1", "conv1"), ("synthesis.b4.torgb", "to_rgb1")] + convs + rgbs


def _noise_index(r: int, conv: str) -> int:
    if r == 4:
        return 0
    k = int(math.log2(r)) - 3
    return 2 * k + (1 if conv == "conv0" else 2)


def _ros_g_to_nvlabs(sd: Mapping[str, Any], path: str, label: str, latent_avg: np.ndarray | None) -> dict:
    src = _Src(sd, path, label)
    n_rgb = len(_indices(sd, r"to_rgbs\.(\d+)\.conv\.weight"))
    res = 2 ** (n_rgb + 2)
    layers = _indices(sd, r"style\.(\d+)\.weight")
    if layers != list(range(1, len(layers) + 1)) or not layers:
        raise CheckpointError(f"{path}: {label} mapping layers style.{layers} are not style.1..style.N")
    out: dict[str, np.ndarray] = {}
    for i in layers:
        out[f"mapping.fc{i - 1}.weight"] = src.get(f"style.{i}.weight")
        out[f"mapping.fc{i - 1}.bias"] = src.get(f"style.{i}.bias")
    if latent_avg is not None:
        out["mapping.w_avg"] = np.asarray(latent_avg).reshape(-1)
    const = src.get("input.input")
    if const.ndim != 4 or const.shape[0] != 1:
        raise CheckpointError(f"{path}: {label} key 'input.input' has shape {_shape(const)}, expected (1, C, 4, 4)")
    out["synthesis.b4.const"] = const[0]
    up_filters: list[np.ndarray] = []
    for nv, ro in _ros_g_names(res):
        w = src.get(f"{ro}.conv.weight")
        if w.ndim != 5 or w.shape[0] != 1:
            raise CheckpointError(f"{path}: {label} key '{ro}.conv.weight' has shape {_shape(w)}, expected (1, O, I, k, k)")
        out[f"{nv}.weight"] = w[0]
        out[f"{nv}.affine.weight"] = src.get(f"{ro}.conv.modulation.weight")
        out[f"{nv}.affine.bias"] = src.get(f"{ro}.conv.modulation.bias")
        r = int(nv.split(".")[1][1:])
        if nv.endswith("torgb"):
            b = src.get(f"{ro}.bias")
            out[f"{nv}.bias"] = b.reshape(-1)
            if src.has(f"{ro}.upsample.kernel"):
                # rosinality's Upsample kernel is the normalised filter times factor**2
                f = src.get(f"{ro}.upsample.kernel") / 4.0
                out[f"synthesis.b{r}.resample_filter"] = f
                up_filters.append(f)
            continue
        conv = nv.split(".")[-1]
        out[f"{nv}.bias"] = src.get(f"{ro}.activate.bias")
        out[f"{nv}.noise_strength"] = src.get(f"{ro}.noise.weight").reshape(())
        j = _noise_index(r, conv)
        noise = src.get(f"noises.noise_{j}")
        if noise.ndim != 4 or noise.shape[:2] != (1, 1):
            raise CheckpointError(f"{path}: {label} key 'noises.noise_{j}' has shape {_shape(noise)}, expected (1, 1, {r}, {r})")
        out[f"{nv}.noise_const"] = noise[0, 0]
        if src.has(f"{ro}.conv.blur.kernel"):
            f = src.get(f"{ro}.conv.blur.kernel") / 4.0  # Blur(upsample_factor=2) scales by 4
            out[f"{nv}.resample_filter"] = f
            up_filters.append(f)
    default = up_filters[0] if up_filters else default_resample_filter()
    for r in _block_resolutions(res, ascending=True):
        out.setdefault(f"synthesis.b{r}.resample_filter", default)
        for conv in ("conv0", "conv1"):
            if f"synthesis.b{r}.{conv}.weight" in out:
                out.setdefault(f"synthesis.b{r}.{conv}.resample_filter", default)
    unused = src.unused()
    if unused:
        raise CheckpointError(f"{path}: {label} has keys that do not belong to a StyleGAN2 generator: {unused[:8]}")
    return out


def _ros_d_names(res: int) -> list[tuple[str, str]]:
    """(nvlabs key, rosinality key) of every tensor rosinality's D stores, in its state_dict order."""
    names = [(f"b{res}.fromrgb.weight", "convs.0.0.weight"), (f"b{res}.fromrgb.bias", "convs.0.1.bias")]
    for k, r in enumerate(_block_resolutions(res, ascending=False), start=1):
        p = f"convs.{k}."
        names += [(f"b{r}.conv0.weight", p + "conv1.0.weight"), (f"b{r}.conv0.bias", p + "conv1.1.bias"),
                  (f"b{r}.conv1.resample_filter", p + "conv2.0.kernel"), (f"b{r}.conv1.weight", p + "conv2.1.weight"),
                  (f"b{r}.conv1.bias", p + "conv2.2.bias"), (f"b{r}.skip.resample_filter", p + "skip.0.kernel"),
                  (f"b{r}.skip.weight", p + "skip.1.weight")]
    return names + [("b4.conv.weight", "final_conv.0.weight"), ("b4.conv.bias", "final_conv.1.bias"),
                    ("b4.fc.weight", "final_linear.0.weight"), ("b4.fc.bias", "final_linear.0.bias"),
                    ("b4.out.weight", "final_linear.1.weight"), ("b4.out.bias", "final_linear.1.bias")]


def _ros_d_to_nvlabs(sd: Mapping[str, Any], path: str, label: str) -> dict:
    src = _Src(sd, path, label)
    ks = _indices(sd, r"convs\.(\d+)\.conv1\.0\.weight")
    if ks != list(range(1, len(ks) + 1)) or not ks:
        raise CheckpointError(f"{path}: {label} residual blocks convs.{ks} are not convs.1..convs.N")
    res = 2 ** (len(ks) + 2)
    out = {nv: src.get(ro) for nv, ro in _ros_d_names(res)}
    # rosinality stores the down filters of conv1 and skip only; the others are the same filter in NVlabs' D
    default = out[f"b{res}.conv1.resample_filter"]
    for r in _block_resolutions(res, ascending=False):
        out[f"b{r}.resample_filter"] = default
        out[f"b{r}.conv0.resample_filter"] = default
    out[f"b{res}.fromrgb.resample_filter"] = default
    out["b4.conv.resample_filter"] = default
    unused = src.unused()
    if unused:
        raise CheckpointError(f"{path}: {label} has keys that do not belong to a StyleGAN2 discriminator: {unused[:8]}")
    return out


def read_rosinality_pt(path: str | os.PathLike) -> RawCheckpoint:
    """rosinality/stylegan2-pytorch checkpoint (``{'g_ema', 'g', 'd', 'latent_avg', 'args', ...}``)."""
    path = os.fspath(path)
    data = load_torch(path)
    if not isinstance(data, dict) or not any(k in data for k in ("g_ema", "g", "d")):
        raise CheckpointError(f"{path}: not a rosinality checkpoint (expected a dict with g_ema / g / d)")
    notes: list[str] = []
    extra: dict[str, Any] = {}
    latent_avg = data.get("latent_avg")
    if latent_avg is not None and not _is_array(latent_avg):
        raise CheckpointError(f"{path}: 'latent_avg' is {type(latent_avg).__name__}, expected a tensor")
    nets: dict[str, dict] = {}
    for ros, nv in (("g", "G"), ("g_ema", "G_ema")):
        if data.get(ros) is not None:
            if not isinstance(data[ros], dict):
                raise CheckpointError(f"{path}: '{ros}' is {type(data[ros]).__name__}, expected a state dict")
            nets[nv] = _ros_g_to_nvlabs(data[ros], path, ros, latent_avg)
    if data.get("d") is not None:
        if not isinstance(data["d"], dict):
            raise CheckpointError(f"{path}: 'd' is {type(data['d']).__name__}, expected a state dict")
        nets["D"] = _ros_d_to_nvlabs(data["d"], path, "d")
    if latent_avg is not None:
        w = next((nets[n]["mapping.fc0.weight"].shape[0] for n in ("G_ema", "G") if n in nets), None)
        if w is not None and _shape(latent_avg) not in ((w,), (1, w)):
            raise CheckpointError(f"{path}: 'latent_avg' has shape {_shape(latent_avg)}, expected ({w},)")
    elif "G" in nets or "G_ema" in nets:
        notes.append("latent_avg absent: mapping.w_avg left out; compute it as the mean of mapping(z) over "
                     "10,000 random z")
    for ros, nv in (("g", "G"), ("g_ema", "G_ema"), ("d", "D")):
        if ros not in data:
            notes.append(f"{ros} ({nv}) absent from the checkpoint")
    hints: dict[str, Any] = {}
    args = data.get("args")
    lr = getattr(args, "lr_mlp", None) if args is not None else None
    if lr is not None:
        hints["mapping_lr_mul"] = float(lr)
    elif "G" in nets or "G_ema" in nets:
        notes.append(f"mapping lr multiplier not stored; assuming rosinality's default lr_mlp={DEFAULT_MAPPING_LR_MUL}")
    if "D" in nets:
        hints["mbstd_group_size"] = ROSINALITY_MBSTD_GROUP
    if args is not None:
        extra["args"] = _plain(dict(vars(args)))
    if data.get("ada_aug_p") is not None:
        try:
            extra["augment_p"] = float(np.asarray(data["ada_aug_p"]).reshape(-1)[0])
        except (TypeError, ValueError):
            pass
    return _finish(nets, path=path, source="rosinality", hints=hints, notes=notes, extra=extra)


# ---- export


def _filter_or_default(sd: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    return _f32(sd[key]) if key in sd else default_resample_filter()


def _nvlabs_g_to_ros(sd: Mapping[str, np.ndarray], cfg: dict, path: str, label: str) -> "collections.OrderedDict":
    src = _Src(sd, path, label)
    res = cfg["resolution"]
    out: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for i in range(cfg["mapping_layers"]):
        out[f"style.{i + 1}.weight"] = src.get(f"mapping.fc{i}.weight")
        out[f"style.{i + 1}.bias"] = src.get(f"mapping.fc{i}.bias")
    out["input.input"] = src.get("synthesis.b4.const")[None]

    def conv(nv: str, ro: str, r: int, up: bool) -> None:
        out[f"{ro}.conv.weight"] = src.get(f"{nv}.weight")[None]
        if up:
            out[f"{ro}.conv.blur.kernel"] = _filter_or_default(sd, f"{nv}.resample_filter") * 4.0
        out[f"{ro}.conv.modulation.weight"] = src.get(f"{nv}.affine.weight")
        out[f"{ro}.conv.modulation.bias"] = src.get(f"{nv}.affine.bias")
        out[f"{ro}.noise.weight"] = src.get(f"{nv}.noise_strength").reshape(1)
        out[f"{ro}.activate.bias"] = src.get(f"{nv}.bias")

    def torgb(nv: str, ro: str, r: int, up: bool) -> None:
        out[f"{ro}.bias"] = src.get(f"{nv}.bias").reshape(1, -1, 1, 1)
        if up:
            out[f"{ro}.upsample.kernel"] = _filter_or_default(sd, f"synthesis.b{r}.resample_filter") * 4.0
        out[f"{ro}.conv.weight"] = src.get(f"{nv}.weight")[None]
        out[f"{ro}.conv.modulation.weight"] = src.get(f"{nv}.affine.weight")
        out[f"{ro}.conv.modulation.bias"] = src.get(f"{nv}.affine.bias")

    for nv, ro in _ros_g_names(res):
        r = int(nv.split(".")[1][1:])
        if nv.endswith("torgb"):
            torgb(nv, ro, r, up=r > 4)
        else:
            conv(nv, ro, r, up=nv.endswith("conv0"))
    for r in _block_resolutions(res, ascending=True):
        for c in (("conv1",) if r == 4 else ("conv0", "conv1")):
            out[f"noises.noise_{_noise_index(r, c)}"] = src.get(f"synthesis.b{r}.{c}.noise_const")[None, None]
    # keep rosinality's order: noises sorted by index at the end
    noise_keys = sorted((k for k in out if k.startswith("noises.")), key=lambda k: int(k.rsplit("_", 1)[1]))
    for k in noise_keys:
        out.move_to_end(k)
    return collections.OrderedDict((k, _f32(v)) for k, v in out.items())


def _nvlabs_d_to_ros(sd: Mapping[str, np.ndarray], cfg: dict, path: str) -> "collections.OrderedDict":
    src = _Src(sd, path, "D")
    return collections.OrderedDict(
        (ro, _filter_or_default(sd, nv) if nv.endswith("resample_filter") else _f32(src.get(nv)))
        for nv, ro in _ros_d_names(cfg["resolution"]))


def write_rosinality_pt(path: str | os.PathLike, nets: Mapping[str, Mapping[str, np.ndarray]], config: dict) -> None:
    """Export NVlabs-named state dicts (any of G, G_ema, D) as a rosinality checkpoint
    ``{'g_ema', 'g', 'd', 'latent_avg'}`` (only the parts present), readable by
    ``torch.load(path, weights_only=True)`` and by :func:`read_rosinality_pt`.

    ``latent_avg`` is G_ema's ``mapping.w_avg`` (else G's); it is omitted when neither has one.  The
    format has a single ``latent_avg``, so a G whose ``w_avg`` differs from G_ema's loses it (a warning
    says so); everything else round-trips exactly through :func:`read_rosinality_pt`.
    """
    path = os.fspath(path)
    nets = {k: v for k, v in nets.items() if v is not None}
    unknown = [k for k in nets if k not in NET_NAMES]
    if unknown:
        raise CheckpointError(f"{path}: unknown network name(s) {unknown}; expected G, G_ema, D")
    cfg = infer_config(nets, path=path, hints={"mbstd_group_size": config.get("mbstd_group_size")})
    for k in ("resolution", "z_dim", "w_dim", "mapping_layers", "mbstd_num_channels"):
        if config.get(k) is not None and cfg.get(k) is not None and int(config[k]) != int(cfg[k]):
            raise CheckpointError(f"{path}: config says {k}={config[k]} but the tensors say {cfg[k]}")
    for k in ("g_channels", "d_channels"):
        given, found = config.get(k), cfg.get(k)
        if isinstance(given, Mapping) and isinstance(found, Mapping):
            given = {int(r): int(c) for r, c in given.items()}
            clash = {r: (given[r], found[r]) for r in found if r in given and given[r] != found[r]}
            if clash:
                raise CheckpointError(f"{path}: config {k} disagrees with the tensors at {clash} (config, tensors)")
    if cfg.get("c_dim"):
        raise CheckpointError(f"{path}: conditional networks (c_dim={cfg['c_dim']}) cannot be expressed in the rosinality format")
    if "D" in nets:
        if cfg["mbstd_num_channels"] != ROSINALITY_MBSTD_CHANNELS:
            raise CheckpointError(
                f"{path}: rosinality's discriminator has {ROSINALITY_MBSTD_CHANNELS} minibatch-std channel; "
                f"this D has {cfg['mbstd_num_channels']}"
            )
        group = config.get("mbstd_group_size", ROSINALITY_MBSTD_GROUP)
        if group != ROSINALITY_MBSTD_GROUP:
            warnings.warn(f"rosinality's discriminator uses minibatch-std group {ROSINALITY_MBSTD_GROUP}; "
                          f"this D was trained with {group}", stacklevel=2)
    lr = config.get("mapping_lr_mul", DEFAULT_MAPPING_LR_MUL)
    if lr is not None and not math.isclose(float(lr), DEFAULT_MAPPING_LR_MUL) and ("G" in nets or "G_ema" in nets):
        warnings.warn(f"mapping lr multiplier {lr} differs from rosinality's default {DEFAULT_MAPPING_LR_MUL}; "
                      "pass --lr_mlp accordingly when using the export", stacklevel=2)
    ckpt: collections.OrderedDict[str, Any] = collections.OrderedDict()
    if "G_ema" in nets:
        ckpt["g_ema"] = _nvlabs_g_to_ros(nets["G_ema"], cfg, path, "G_ema")
    if "G" in nets:
        ckpt["g"] = _nvlabs_g_to_ros(nets["G"], cfg, path, "G")
    if "D" in nets:
        ckpt["d"] = _nvlabs_d_to_ros(nets["D"], cfg, path)
    for n in ("G_ema", "G"):
        if n in nets and "mapping.w_avg" in nets[n]:
            ckpt["latent_avg"] = _f32(nets[n]["mapping.w_avg"]).reshape(-1)
            break
    if all(n in nets and "mapping.w_avg" in nets[n] for n in ("G", "G_ema")) and not np.array_equal(
            _f32(nets["G"]["mapping.w_avg"]), _f32(nets["G_ema"]["mapping.w_avg"])):
        warnings.warn("the rosinality format has a single latent_avg: G_ema's w_avg is written and G's "
                      "(different) w_avg is dropped", stacklevel=2)
    save_torch(ckpt, path)


# --------------------------------------------------------------------------------------------
# NVlabs TensorFlow pickles


def _tf_params(net: TFNetwork) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def walk(prefix: str, n: TFNetwork, depth: int) -> None:
        if depth > 8:
            return
        for name, value in n.variables.items():
            out[prefix + name] = value
        for name, comp in n.components.items():
            if isinstance(comp, TFNetwork):
                walk(prefix + name + "/", comp, depth + 1)

    walk("", net, 0)
    return out


def _tf_kwargs(net: TFNetwork) -> dict:
    kw = dict(net.static_kwargs)
    for comp in net.components.values():
        if isinstance(comp, TFNetwork):
            for k, v in comp.static_kwargs.items():
                kw.setdefault(k, v)
    return kw


def _tf_g_to_nvlabs(net: TFNetwork, path: str, label: str) -> tuple[dict, dict]:
    tf = _tf_params(net)
    src = _Src(tf, path, label)
    kw = _tf_kwargs(net)
    arch = kw.get("architecture", "skip")
    if arch != "skip" or any(re.fullmatch(r"synthesis/\d+x\d+/Skip/weight", k) for k in tf):
        raise CheckpointError(f"{path}: {label} uses the '{arch}' generator architecture; only 'skip' is supported")
    if any(k.startswith("mapping/LabelConcat") for k in tf):
        raise CheckpointError(f"{path}: {label} uses 'LabelConcat' conditioning, which is not supported")
    rs = sorted({int(m.group(1)) for k in tf if (m := re.fullmatch(r"synthesis/(\d+)x\1/.*", k))})
    if not rs:
        src.get("synthesis/4x4/Const/const")  # raises
    res = max(rs)
    filt = default_resample_filter(kw.get("resample_kernel", [1, 3, 3, 1]))
    out: dict[str, np.ndarray] = {}
    if src.has("dlatent_avg"):
        out["mapping.w_avg"] = src.get("dlatent_avg")
    if src.has("mapping/LabelEmbed/weight"):
        out["mapping.embed.weight"] = src.get("mapping/LabelEmbed/weight").T
        out["mapping.embed.bias"] = src.get("mapping/LabelEmbed/bias")
    for i in _indices(tf, r"mapping/Dense(\d+)/weight"):
        out[f"mapping.fc{i}.weight"] = src.get(f"mapping/Dense{i}/weight").T
        out[f"mapping.fc{i}.bias"] = src.get(f"mapping/Dense{i}/bias")
    out["synthesis.b4.const"] = src.get("synthesis/4x4/Const/const")[0]

    def layer(nv: str, tfp: str, r: int, conv: str | None) -> None:
        w = src.get(f"{tfp}/weight")
        if w.ndim != 4:
            raise CheckpointError(f"{path}: {label} key '{tfp}/weight' has shape {_shape(w)}, expected 4-D HWIO")
        if conv == "conv0":
            w = w[::-1, ::-1]  # TF's transposed convolution uses the spatially flipped kernel
        out[f"{nv}.weight"] = w.transpose(3, 2, 0, 1)
        out[f"{nv}.bias"] = src.get(f"{tfp}/bias")
        out[f"{nv}.affine.weight"] = src.get(f"{tfp}/mod_weight").T
        out[f"{nv}.affine.bias"] = src.get(f"{tfp}/mod_bias") + 1.0  # TF adds the +1 at run time
        if conv is not None:
            out[f"{nv}.noise_strength"] = src.get(f"{tfp}/noise_strength").reshape(())
            noise = src.get(f"synthesis/noise{_noise_index(r, conv)}")
            out[f"{nv}.noise_const"] = noise.reshape(noise.shape[-2:])
            out[f"{nv}.resample_filter"] = filt

    for r in rs:
        out[f"synthesis.b{r}.resample_filter"] = filt
        if r == 4:
            layer("synthesis.b4.conv1", "synthesis/4x4/Conv", 4, "conv1")
        else:
            layer(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", r, "conv0")
            layer(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", r, "conv1")
        layer(f"synthesis.b{r}.torgb", f"synthesis/{r}x{r}/ToRGB", r, None)
    unused = [k for k in src.unused() if not re.fullmatch(r"synthesis/noise\d+", k)]
    if unused:
        raise CheckpointError(f"{path}: {label} has variables that do not belong to a StyleGAN2 generator: {unused[:8]}")
    return out, kw


def _tf_d_to_nvlabs(net: TFNetwork, path: str) -> tuple[dict, dict]:
    tf = _tf_params(net)
    src = _Src(tf, path, "D")
    kw = _tf_kwargs(net)
    arch = kw.get("architecture", "resnet")
    if arch != "resnet":
        raise CheckpointError(f"{path}: D uses the '{arch}' discriminator architecture; only 'resnet' is supported")
    rs = sorted({int(m.group(1)) for k in tf if (m := re.fullmatch(r"(\d+)x\1/.*", k))})
    if not rs:
        src.get("4x4/Conv/weight")  # raises
    res = max(rs)
    filt = default_resample_filter(kw.get("resample_kernel", [1, 3, 3, 1]))

    def conv(nv: str, tfp: str, bias: bool = True) -> None:
        w = src.get(f"{tfp}/weight")
        if w.ndim != 4:
            raise CheckpointError(f"{path}: D key '{tfp}/weight' has shape {_shape(w)}, expected 4-D HWIO")
        out[f"{nv}.weight"] = w.transpose(3, 2, 0, 1)
        if bias:
            out[f"{nv}.bias"] = src.get(f"{tfp}/bias")
        out[f"{nv}.resample_filter"] = filt

    out: dict[str, np.ndarray] = {}
    for r in [x for x in reversed(rs) if x > 4]:
        out[f"b{r}.resample_filter"] = filt
        if r == res:
            conv(f"b{r}.fromrgb", f"{r}x{r}/FromRGB")
        conv(f"b{r}.conv0", f"{r}x{r}/Conv0")
        conv(f"b{r}.conv1", f"{r}x{r}/Conv1_down")
        conv(f"b{r}.skip", f"{r}x{r}/Skip", bias=False)
    if src.has("LabelEmbed/weight"):
        out["mapping.embed.weight"] = src.get("LabelEmbed/weight").T
        out["mapping.embed.bias"] = src.get("LabelEmbed/bias")
        for i in _indices(tf, r"Mapping(\d+)/weight"):
            out[f"mapping.fc{i}.weight"] = src.get(f"Mapping{i}/weight").T
            out[f"mapping.fc{i}.bias"] = src.get(f"Mapping{i}/bias")
    conv("b4.conv", "4x4/Conv")
    out["b4.fc.weight"] = src.get("4x4/Dense0/weight").T
    out["b4.fc.bias"] = src.get("4x4/Dense0/bias")
    out["b4.out.weight"] = src.get("Output/weight").T
    out["b4.out.bias"] = src.get("Output/bias")
    unused = src.unused()
    if unused:
        raise CheckpointError(f"{path}: D has variables that do not belong to a StyleGAN2 discriminator: {unused[:8]}")
    return out, kw


def read_tf_pkl(path: str | os.PathLike) -> RawCheckpoint:
    """NVlabs TensorFlow StyleGAN2 / StyleGAN2-ADA pickle ``(G, D, Gs)``."""
    path = os.fspath(path)
    data = load_pickle(path)
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data)):
        raise CheckpointError(f"{path}: not a TensorFlow StyleGAN2 pickle (expected a tuple (G, D, Gs) of networks)")
    tf_g, tf_d, tf_gs = data
    nets: dict[str, dict] = {}
    g, gkw = _tf_g_to_nvlabs(tf_g, path, "G")
    gs, gskw = _tf_g_to_nvlabs(tf_gs, path, "Gs")
    d, dkw = _tf_d_to_nvlabs(tf_d, path)
    nets = {"G": g, "G_ema": gs, "D": d}
    notes: list[str] = []
    for n, sd in (("G", g), ("Gs", gs)):
        if "mapping.w_avg" not in sd:
            notes.append(f"dlatent_avg absent from {n}: mapping.w_avg left out (latent_avg absent); compute it "
                         "as the mean of mapping(z) over 10,000 random z")
    hints: dict[str, Any] = {
        "mbstd_group_size": dkw.get("mbstd_group_size", 4),
        "conv_clamp": gskw.get("conv_clamp"),
        "mapping_lr_mul": float(gskw.get("mapping_lrmul", DEFAULT_MAPPING_LR_MUL)),
    }
    if hints["mbstd_group_size"] is not None:
        hints["mbstd_group_size"] = int(hints["mbstd_group_size"])
    if "fmap_base" in gskw and float(gskw.get("fmap_decay", 1.0)) == 1.0:
        hints["channel_base"] = int(gskw["fmap_base"]) * 2  # TF counts stages from 1, NVlabs-pytorch from 0
    if "fmap_max" in gskw:
        hints["channel_max"] = int(gskw["fmap_max"])
    if "mbstd_group_size" not in dkw:
        notes.append("mbstd_group_size not stored in the TF pickle; assuming 4")
    extra = {"static_kwargs": {"G": _plain(gkw), "Gs": _plain(gskw), "D": _plain(dkw)}}
    return _finish(nets, path=path, source="tf", hints=hints, notes=notes, extra=extra)
