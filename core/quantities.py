"""The one registry of rooflax's vocabulary: every quantity, knob, axis and code word, defined once.

Each name's unit, long name (the cube's ``long_name`` and the CLI's "meaning"), the words used in
sentences and, for a knob, its domain live here and nowhere else; the cube writer
(:mod:`rooflax.sweeps.grid`, :mod:`rooflax.sweeps.store`), config and observation validation,
``rooflax query``/``sensitivity``/``fit`` and the plots all read this module. Units are spelled
one way across the house: ``B`` (bytes), ``B/s``, ``tokens``, ``tokens/s``, ``sequences``,
``$/Mtok``, ``1`` (dimensionless).

No imports at module level (plain data): a quantity names its core function by dotted path
(:meth:`Quantity.fn` resolves it under :mod:`rooflax.core` when called).

* **Quantity** — name → core function, argument trees (``"hmw"``, ``"hm"``, ``"mw"``, ``"m"``),
  shape class, units, long name, words, and the name an observation file uses (``fit_name``).
  Shape classes: ``point`` (one value per batch × context point), ``optimum`` (reduced over batch),
  ``static`` (neither batch nor context), ``sequence`` (per sequence: model and workload only),
  ``fit`` (only observed or derived in ``rooflax fit``). The sensitivity outputs are
  :data:`SENSITIVITY_OUTPUTS`.
* **Knob** — a pytree leaf (``tree``, ``field``) or an alias that sets leaves (``tree`` None);
  units, long name, words, its domain (checked at every door by :func:`rooflax.sweeps.units.knob`)
  and whether core's sensitivities differentiate it.
* **Axis** — attributes of the cube coordinates that are neither quantity nor knob.
* :data:`REGIMES`, :data:`BINDINGS`, :data:`REASONS` — the code words of the integer variables.
"""

from __future__ import annotations

import dataclasses
import importlib

#: Trees in the order core functions take them.
TREES = ("hardware", "model", "workload")


@dataclasses.dataclass(frozen=True)
class Quantity:
    """A core quantity as the CLI, the cube, fit and the plots name it."""

    name: str
    units: str
    long_name: str
    func: str          # dotted path under rooflax.core, e.g. "roofline.t_step"
    args: str          # which pytrees the function takes: "hmw", "hm", "mw", "m"
    shape: str         # "point" | "optimum" | "static" | "sequence" | "fit"
    words: str = ""    # in sentences ("cost per token"); the long name when empty
    fit_name: str | None = None  # the name observation files use (None: not observable)

    def fn(self):
        """The core function (imports :mod:`rooflax.core`, hence jax)."""
        module, attr = self.func.rsplit(".", 1)
        return getattr(importlib.import_module(f"rooflax.core.{module}"), attr)

    def __call__(self, hw, model, wl):
        """The quantity at (hw, model, wl): its function on the trees it takes."""
        trees = {"h": hw, "m": model, "w": wl}
        return self.fn()(*(trees[a] for a in self.args))

    @property
    def sentence(self) -> str:
        return self.words or self.long_name


def _q(name, units, long_name, func, args, shape, words="", fit_name=None) -> Quantity:
    return Quantity(name, units, long_name, func, args, shape, words, fit_name)


_QUANTITY_ROWS = (
    # per point (batch × context)
    _q("t_compute", "s", "compute time per decode step", "roofline.t_compute", "hmw", "point",
       fit_name="t_compute"),
    _q("t_memory", "s", "memory time per decode step (weights + KV)", "roofline.t_memory", "hmw", "point",
       fit_name="t_memory"),
    _q("t_step", "s", "decode step time max(T_compute, T_memory)", "roofline.t_step", "hmw", "point"),
    _q("throughput", "tokens/s", "output tokens per second per replica", "roofline.throughput", "hmw",
       "point", "output tokens/s of a replica: B·τ/T_step", "tokens_per_s_per_replica"),
    _q("latency", "s", "per-token latency (= T_step)", "roofline.latency", "hmw", "point",
       "per-token latency T_step/τ (τ accepted tokens per step)", "latency_per_token"),
    _q("cost_per_token", "$", "cost per output token", "roofline.cost_per_token", "hmw", "point"),
    _q("cost_per_mtok", "$/Mtok", "cost per million output tokens", "roofline.cost_per_mtok", "hmw",
       "point", "cost per million output tokens: 1e6·T_step·p·n/(B·τ)", "cost_per_mtok_output"),
    _q("mfu", "1", "model FLOPs utilization", "roofline.mfu", "hmw", "point", fit_name="mfu"),
    _q("kv_share", "1", "KV share of memory traffic", "roofline.kv_share", "hmw", "point",
       fit_name="kv_share"),
    _q("regime", "1", "regime code", "roofline.regime", "hmw", "point"),
    _q("compute_memory_ratio", "1", "T_compute / T_memory", "roofline.compute_memory_ratio", "hmw", "point"),
    _q("tokens_per_second_per_user", "tokens/s", "output tokens per second per user",
       "roofline.tokens_per_second_per_user", "hmw", "point", "output tokens/s one user sees: τ/T_step",
       "tokens_per_s_per_user"),
    _q("l_crit", "tokens", "critical context (KV traffic = weight traffic at batch B)", "optimum.l_crit",
       "hmw", "point", "context of the weight-bound → KV-bound flip at batch B: N_total·w/(B·b)", "l_crit"),
    # reduced over batch
    _q("b_x", "sequences", "crossover batch (T_compute = T_memory)", "optimum.b_x", "hmw", "optimum",
       fit_name="b_x"),
    _q("b_max", "sequences", "capacity batch", "optimum.b_max", "hmw", "optimum", fit_name="b_max"),
    _q("b_slo", "sequences", "largest batch meeting the SLO", "optimum.b_slo", "hmw", "optimum"),
    _q("b_star", "sequences", "optimal batch B* = min(B_x, B_max, B_slo)", "optimum.b_star", "hmw",
       "optimum", "optimal batch B*", "b_star"),
    _q("binding", "1", "binding constraint of B*", "optimum.binding", "hmw", "optimum"),
    _q("cost_at_b_star", "$", "cost per output token at B*", "optimum.cost_at_b_star", "hmw", "optimum",
       "cost per token"),
    _q("cost_per_mtok_at_b_star", "$/Mtok", "cost per million output tokens at B*",
       "optimum.cost_per_mtok_at_b_star", "hmw", "optimum", fit_name="cost_per_mtok_output_at_b_star"),
    _q("latency_at_b_star", "s", "per-token latency at B*", "optimum.latency_at_b_star", "hmw", "optimum",
       "latency per token"),
    _q("throughput_at_b_star", "tokens/s", "output tokens per second per replica at B*",
       "optimum.throughput_at_b_star", "hmw", "optimum", "throughput"),
    _q("cost_floor", "$", "cost per token as B -> infinity", "optimum.cost_floor", "hmw", "optimum"),
    _q("cost_ratio_b1", "1", "cost per token at B=1 over cost at B*", "optimum.cost_ratio_b1", "hmw",
       "optimum"),
    # neither batch nor context
    _q("l_bal", "tokens", "balanced context (KV slope = compute slope)", "optimum.l_bal", "hm", "static",
       "context where the KV slope equals the compute slope", "l_bal"),
    _q("latency_floor", "s", "latency floor N_total*w/BW", "optimum.latency_floor", "hm", "static"),
    _q("b_x_kv_free", "sequences", "crossover batch with KV neglected", "optimum.b_x_kv_free", "hm",
       "static"),
    # per sequence
    _q("l_eff", "tokens", "cached tokens read per step", "roofline.l_eff", "mw", "sequence"),
    _q("kv_read_bytes", "B", "KV bytes read per sequence per step", "roofline.kv_read_bytes", "mw",
       "sequence"),
    _q("kv_store_bytes", "B", "KV bytes stored per sequence", "roofline.kv_store_bytes", "mw", "sequence",
       "KV bytes one sequence keeps", "kv_bytes_per_sequence"),
    # only in rooflax fit (observations and derived quantities)
    _q("tokens_per_s_per_chip", "tokens/s", "output tokens per second per chip",
       "roofline.throughput_per_chip", "hmw", "fit", "output tokens/s per chip: B·τ/(T_step·n)",
       "tokens_per_s_per_chip"),
    _q("weight_bytes", "B", "weight bytes of the model N_total*w", "roofline.weight_bytes", "m", "fit",
       fit_name="weight_bytes"),
    _q("cost_per_mtok_input", "$/Mtok", "cost per million input (prompt) tokens", "prefill.cost_per_minput",
       "hmw", "fit", fit_name="cost_per_mtok_input"),
    _q("ttft", "s", "time to first token", "prefill.ttft", "hmw", "fit", fit_name="ttft"),
    _q("input_tokens_per_s_per_replica", "tokens/s", "prefill tokens per second per replica",
       "prefill.input_throughput", "hmw", "fit", fit_name="input_tokens_per_s_per_replica"),
    _q("input_tokens_per_s_per_chip", "tokens/s", "prefill tokens per second per chip",
       "prefill.input_throughput_per_chip", "hmw", "fit", fit_name="input_tokens_per_s_per_chip"),
    _q("output_input_price_ratio", "1", "cost per output token over cost per input token",
       "prefill.output_input_price_ratio", "hmw", "fit", fit_name="output_input_price_ratio"),
)

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _QUANTITY_ROWS}

#: The outputs whose sensitivities core reports (in this order).
SENSITIVITY_OUTPUTS = ("b_star", "cost_at_b_star", "latency_at_b_star", "throughput_at_b_star")


def quantities_of(*shapes: str) -> tuple[str, ...]:
    """Names of the quantities of the given shape classes, in registry order."""
    return tuple(q.name for q in _QUANTITY_ROWS if q.shape in shapes)


# --------------------------------------------------------------------------- knobs
#: A knob's domain: (parser kind, lower bound, lower bound excluded, upper bound, whole number,
#: +inf allowed, words for "expected …"); parser kinds are those of :mod:`rooflax.sweeps.units`.
Domain = tuple[str, float, bool, "float | None", bool, bool, str]


@dataclasses.dataclass(frozen=True)
class Knob:
    """A pytree leaf (``tree``/``field``) or an alias that sets leaves (``tree`` None)."""

    name: str
    tree: str | None
    units: str
    long_name: str
    words: str = ""
    domain: Domain | None = None
    sensitivity: bool = False   # a knob of core.sensitivity (differentiated)
    seed: bool = False          # a knob of the seeds' model (SPEC "Sensitivity")

    @property
    def field(self) -> str:
        return self.name

    @property
    def sentence(self) -> str:
        return self.words or self.long_name


def _d(kind, lo, lo_open, hi, integer, allow_inf, what) -> Domain:
    return (kind, lo, lo_open, hi, integer, allow_inf, what)


_H, _M, _W = TREES
_KNOB_ROWS = (
    # the seeds' knobs (SPEC "Sensitivity"); ∂/∂bw holds c_over_bw fixed, ∂/∂sparsity n_total
    Knob("bw", _H, "B/s", "HBM bandwidth per chip", "bandwidth",
         _d("bandwidth", 0.0, True, None, False, False, "a bandwidth > 0, B/s"), True, True),
    Knob("c_over_bw", _H, "MAC/B", "machine balance C/BW", "C/BW (compute at fixed bandwidth)",
         _d("number", 0.0, True, None, False, False, "a machine balance C/BW > 0, MAC/B"), True, True),
    Knob("capacity", _H, "B", "HBM capacity per chip", "HBM capacity",
         _d("bytes", 0.0, True, None, False, True, "an HBM capacity > 0, bytes"), True, True),
    Knob("price", _H, "$/s", "price per chip-second", "price per chip",
         _d("number", 0.0, False, None, False, False, "a price ≥ 0, $/s per chip"), True, True),
    Knob("chips", _H, "chips", "chips per replica", "",
         _d("number", 1.0, False, None, True, False, "a whole number of chips ≥ 1"), True, True),
    Knob("n_total", _M, "parameters", "total parameters", "",
         _d("number", 0.0, True, None, False, False, "a parameter count > 0"), True, True),
    Knob("sparsity", _M, "1", "N_total / N_active", "sparsity (N_total/N_active)",
         _d("number", 1.0, False, None, False, False, "a sparsity N_total/N_active ≥ 1"), True, True),
    Knob("kv_bytes_per_token", _M, "B/token", "KV-cache bytes per token", "KV bytes per token",
         _d("number", 0.0, False, None, False, False, "KV bytes per token ≥ 0"), True, True),
    Knob("bytes_per_weight", _M, "B", "bytes per weight", "",
         _d("number", 0.0, True, None, False, False, "bytes per weight > 0"), True, True),
    Knob("context", _W, "tokens", "context tokens held in KV per sequence", "context",
         _d("tokens", 0.0, False, None, False, False, "a context ≥ 0 tokens (32k = 32768)"), True, True),
    Knob("batch", _W, "sequences", "sequences decoded together per step", "batch",
         _d("number", 1.0, False, None, False, False, "a batch ≥ 1 sequence"), True, True),
    Knob("slo", _W, "s", "per-token latency target", "latency target",
         _d("time", 0.0, True, None, False, True, "a latency target > 0 s (e.g. 50ms; inf: none)"), True, True),
    # the extended model's knobs (neutral defaults)
    Knob("flops_eff", _H, "1", "achieved fraction of peak FLOPS", "",
         _d("number", 0.0, True, 1.0, False, False, "a fraction of peak FLOPS in (0, 1]"), True),
    Knob("bw_eff", _H, "1", "achieved fraction of peak HBM bandwidth", "",
         _d("number", 0.0, True, 1.0, False, False, "a fraction of peak bandwidth in (0, 1]"), True),
    Knob("link_bw", _H, "B/s", "scale-up link bandwidth per chip, one direction", "",
         _d("bandwidth", 0.0, True, None, False, True, "a link bandwidth > 0, B/s (inf: free)"), True),
    Knob("link_eff", _H, "1", "achieved fraction of peak link bandwidth", "",
         _d("number", 0.0, True, 1.0, False, False, "a fraction of link bandwidth in (0, 1]"), True),
    Knob("link_latency", _H, "s", "latency per collective message", "",
         _d("time", 0.0, False, None, False, False, "a link latency ≥ 0 s"), True),
    Knob("dp", _H, "groups", "data-parallel attention groups per replica", "",
         _d("number", 1.0, False, None, True, False, "a whole number of groups ≥ 1"), True),
    Knob("expert_replicas", _H, "copies", "copies of each routed expert per replica", "",
         _d("number", 1.0, False, None, True, False, "a whole number of copies ≥ 1"), True),
    Knob("attn_flops_per_ctx_token", _M, "FLOP/token", "attention FLOPs per cached token read", "",
         _d("number", 0.0, False, None, False, False, "attention FLOPs per context token ≥ 0"), True),
    Knob("spec_k", _W, "tokens", "speculative tokens drafted per step", "",
         _d("number", 0.0, False, None, True, False, "a whole number of drafted tokens ≥ 0"), True),
    Knob("spec_alpha", _W, "1", "acceptance rate of a drafted token", "",
         _d("number", 0.0, False, 1.0, False, False, "an acceptance rate in [0, 1]"), True),
    # other leaves (settable in fit; not differentiated)
    Knob("overlap", _H, "1", "communication overlap (1: max, 0: sum)", "",
         _d("number", 0.0, False, 1.0, False, False, "an overlap fraction in [0, 1]")),
    Knob("moe_ep", _H, "1", "routed experts expert-parallel (1) or tensor-parallel (0)"),
    Knob("window", _M, "tokens", "sliding window of the global layers"),
    Knob("top_k", _M, "tokens", "top-k sparse attention: cached tokens read per step"),
    Knob("sqrt_coeff", _M, "1", "coefficient c of sqrt-L sparse attention"),
    Knob("kv_bytes_per_token_local", _M, "B/token",
         "KV bytes per token of the second stream (local layers or a sparse-attention indexer)"),
    Knob("local_window", _M, "tokens", "window of the local layers (inf for an indexer)"),
    Knob("state_bytes_per_seq", _M, "B", "linear-attention state bytes per sequence"),
    Knob("attn_flops_per_ctx_token_local", _M, "FLOP/token",
         "second-stream attention FLOPs per cached token (local layers or an indexer)"),
    Knob("attn_flops_prefill_per_ctx_token", _M, "FLOP/token",
         "prefill attention FLOPs per cached token (0: decode's)"),
    Knob("expert_fraction", _M, "1", "fraction of N_total in routed experts"),
    Knob("expert_activation", _M, "1", "chance a token touches a given routed expert"),
    Knob("kv_heads", _M, "heads", "KV heads"),
    Knob("hidden", _M, "elements", "hidden size"),
    Knob("layers", _M, "layers", "decoder layers"),
    Knob("moe_layers", _M, "layers", "layers with routed experts"),
    Knob("experts_per_token", _M, "experts", "routed experts per token"),
    Knob("route_limit", _M, "destinations", "most link destinations of a token's dispatch"),
    Knob("act_bytes", _M, "B", "bytes per activation element (all-reduce, combine)"),
    Knob("dispatch_bytes", _M, "B", "bytes per activation element in EP dispatch"),
    Knob("prompt", _W, "tokens", "prompt tokens per sequence"),
    Knob("prefill_batch", _W, "sequences", "prompts processed together per prefill step"),
    # aliases: knobs that set leaves (rooflax.core.fit.vocabulary applies them)
    Knob("price_per_hour", None, "$/h", "price per chip-hour",
         "price of one chip per hour (sets price = value/3600)",
         _d("price", 0.0, False, None, False, False, "a price ≥ 0, $/h per chip")),
    Knob("batch_per_chip", None, "sequences", "concurrent sequences per chip",
         "concurrent sequences per chip (sets batch = value·chips)"),
    Knob("n_active", None, "parameters", "active parameters per token",
         "active parameters per token (sets sparsity = n_total/value)"),
    Knob("efficiency", None, "1", "one achieved fraction of peak for FLOPS and bandwidth",
         "one achieved fraction of peak for both FLOPS and bandwidth (sets flops_eff = bw_eff = value)"),
    Knob("flops", None, "FLOP/s", "peak dense FLOP/s per chip",
         "peak dense FLOP/s of one chip (sets c_over_bw = value/2/bw)"),
)

KNOBS: dict[str, Knob] = {k.name: k for k in _KNOB_ROWS}
#: Knobs that are pytree leaves, and those that are aliases.
LEAVES = tuple(k.name for k in _KNOB_ROWS if k.tree is not None)
ALIASES = tuple(k.name for k in _KNOB_ROWS if k.tree is None)
#: The knobs core's sensitivities differentiate, and the seeds' subset (SPEC "Sensitivity").
SENSITIVITY_KNOBS = tuple(k.name for k in _KNOB_ROWS if k.sensitivity)
SEED_KNOBS = tuple(k.name for k in _KNOB_ROWS if k.seed)

#: Inputs of the command line that are not knobs, with their domain.
INPUTS: dict[str, Domain] = {
    "port": _d("number", 0.0, False, 65535.0, True, False, "a TCP port in [0, 65535]"),
}

#: The domain of every knob and input, declared once and checked at every door (CLI options,
#: config fields, observation files) by :func:`rooflax.sweeps.units.knob`.
DOMAINS: dict[str, Domain] = {**{k.name: k.domain for k in _KNOB_ROWS if k.domain is not None}, **INPUTS}


# --------------------------------------------------------------------------- axes and codes
@dataclasses.dataclass(frozen=True)
class Axis:
    """A cube coordinate that is neither a quantity nor a knob."""

    name: str
    units: str
    long_name: str


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("hardware", "1", "hardware"),
    Axis("model", "1", "model"),
    Axis("precision", "1", "precision"),
    Axis("hardware_name", "1", "hardware"),
    Axis("hardware_source", "1", "source"),
    Axis("model_source", "1", "source"),
    Axis("price_basis", "1", "price basis (no price: NaN cost)"),
    Axis("price_source", "1", "source of the price"),
    Axis("compute_precision", "1", "precision of the FLOPS used"),
    Axis("power_kw", "kW", "power per chip"),
)}


def attrs(name: str) -> dict[str, str]:
    """``{"units", "long_name"}`` of a quantity, knob or axis (KeyError for an unknown name)."""
    entry = QUANTITIES.get(name) or KNOBS.get(name) or AXES[name]
    return {"units": entry.units, "long_name": entry.long_name}


def units_of(name: str) -> str:
    """The unit of a quantity, knob or axis ("" where the name is none of them)."""
    entry = QUANTITIES.get(name) or KNOBS.get(name) or AXES.get(name)
    return entry.units if entry is not None else ""


def sensitivity_attrs(kind: str, output: str, knob: str) -> dict[str, str]:
    """Attributes of ``{kind}__{output}__{knob}``: a partial ∂y/∂x has unit [y] per [x]; an
    elasticity ∂ln y/∂ln x is dimensionless."""
    u = "1" if kind == "elasticity" else f"{QUANTITIES[output].units} per {KNOBS[knob].units}"
    return {"units": u, "long_name": f"{kind} of {output} with respect to {knob}"}


#: Regime codes of :func:`rooflax.core.roofline.regime` (int8).
REGIMES = ("weight-bound", "kv-bound", "compute-bound", "comm-bound")
#: Binding constraints of B* (:func:`rooflax.core.optimum.binding`).
BINDINGS = ("crossover", "capacity", "slo", "infeasible")
#: Reason codes of :func:`rooflax.core.sensitivity.sensitivities`.
REASONS = ("ok", "infeasible: no feasible batch", "tie between binding constraints (kink of B*)")
#: The cube's ``sensitivity_reason`` code after :data:`REASONS`: the float64 derivative is finite
#: but the storage dtype cannot hold it (overflow, or a nonzero value that underflows to 0).
STORAGE_REASON = "storage dtype cannot hold the float64 value"
#: Attributes of the cube's ``sensitivity_reason`` variable.
REASON_ATTRS = {"units": "1", "long_name": "why a sensitivity is NaN"}


def flag_attrs(name: str) -> dict:
    """CF flag attributes of an integer code variable (``regime``, ``binding``,
    ``sensitivity_reason``); empty for any other name."""
    if name == "regime":
        return {"flag_values": list(range(len(REGIMES))),
                "flag_meanings": " ".join(r.replace(" ", "_") for r in REGIMES)}
    if name == "binding":
        return {"flag_values": list(range(len(BINDINGS))), "flag_meanings": " ".join(BINDINGS)}
    if name == "sensitivity_reason":
        return {"flag_values": list(range(len(REASONS) + 1)),
                "flag_meanings": " ".join([r.split(":")[0].split(" ")[0] for r in REASONS] + ["storage"]),
                "reasons": [*REASONS, STORAGE_REASON]}
    return {}
