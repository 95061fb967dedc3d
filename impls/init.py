"""Initial parameters, drawn once in NumPy so that every backend starts from the same weights."""

from __future__ import annotations

import math

import numpy as np

from .spec import MLPSpec, check_name

# scheme -> (draw(rng, shape, fan_in, fan_out, scale), default scale or None if it takes none)


def _glorot_uniform(rng, shape, fan_in, fan_out, scale):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _he_normal(rng, shape, fan_in, fan_out, scale):
    # Plain (untruncated) normal with std sqrt(2 / fan_in), as torch's kaiming_normal_.
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


def _uniform(rng, shape, fan_in, fan_out, scale):
    return rng.uniform(-scale, scale, size=shape)


def _normal(rng, shape, fan_in, fan_out, scale):
    return rng.normal(0.0, scale, size=shape)


def _standard_normal(rng, shape, fan_in, fan_out, scale):
    return rng.standard_normal(size=shape)


SCHEMES = {
    "glorot_uniform": (_glorot_uniform, None),
    "he_normal": (_he_normal, None),
    "uniform": (_uniform, 0.05),
    "normal": (_normal, 0.05),
    "standard_normal": (_standard_normal, None),
}
BIAS_MODES = ("zeros", "like_weights")


def init_params(
    spec: MLPSpec,
    seed: int = 0,
    scheme: str = "glorot_uniform",
    scale: float | None = None,
    bias: str = "zeros",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Initial [(W (n_in, n_out), b (n_out,)), ...] as NumPy arrays of spec.dtype.

    Schemes: glorot_uniform (±sqrt(6 / (fan_in + fan_out))), he_normal (std sqrt(2 / fan_in),
    untruncated), uniform (±scale, default 0.05), normal (std scale, default 0.05) and
    standard_normal. `bias="zeros"` (default) or `"like_weights"`, which draws each bias vector
    from the same distribution as its layer's weights. Values are drawn in float64 from
    `numpy.random.default_rng(seed)`, layer by layer (W then b), then cast, so the result
    depends only on the arguments: never on the backend, and the float32 and float64
    parameters of one seed agree to float32 rounding.
    """
    check_name("init scheme", scheme, SCHEMES)
    check_name("bias init", bias, BIAS_MODES)
    draw, default_scale = SCHEMES[scheme]
    if default_scale is None:
        if scale is not None:
            raise ValueError(f"init scheme {scheme!r} takes no scale, got scale={scale!r}")
    else:
        scale = default_scale if scale is None else scale
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"init scale must be a finite number > 0, got {scale!r}")
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(spec.layer_sizes[:-1], spec.layer_sizes[1:]):
        W = draw(rng, (n_in, n_out), n_in, n_out, scale)
        if bias == "zeros":
            b = np.zeros(n_out)
        else:
            b = draw(rng, (n_out,), n_in, n_out, scale)
        params.append((W.astype(spec.dtype), b.astype(spec.dtype)))
    return params
