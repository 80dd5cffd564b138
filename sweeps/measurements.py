"""Measured serving performance as a typed schema, and readers that never edit the data.

A :class:`Measurement` is one measured quantity of one serving run: hardware and chips of the
replica, its layout (tp, attention-DP, EP, PP), the model, the precision of each component, the
workload (isl, osl, concurrency, running batch), the mode (aggregated, disaggregated decode pool,
prefill), the engine, the quantity (``tpot_ms``, ``ttft_ms``, …) and its value, and the source.

Readers:

* :func:`read_aiconfigurator_csv` — NVIDIA aiconfigurator's ``silicon_sample.csv`` format, its own
  column names (``backend, model_path, system, precision, mode, isl, osl, gemm_quant_mode, …``);
* :func:`read_yaml` — the structured YAML (``measurements: [ {field: value, …}, … ]``, the fields of
  :class:`Measurement`).

The CSV's quirks are resolved by the rules of :data:`RULES`, applied per row and recorded in the
row's ``rules`` (never by editing a value). A row the rules cannot express is returned as a
:class:`Skipped` with its reason.
"""

from __future__ import annotations

import csv
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Mode = Literal["agg", "disagg-decode", "prefill"]
Quantity = Literal["tpot_ms", "ttft_ms", "output_tok_s_per_gpu", "tok_s_per_user"]

#: The loader's rules for the aiconfigurator table, by name (each row records the ones it used).
RULES: dict[str, str] = {
    "gpus-from-id": "agg rows: the GPU count of the run is the number after `_tp` in the row id "
                    "when the id has one (the id names the launch; the layout columns are derived)",
    "ep-scaled-layout": "MoE rows whose tp·attention_dp equals (GPUs in the id)·moe_ep were stored "
                        "with tp (or attention_dp) and moe_tp multiplied by moe_ep: read tp (or "
                        "attention_dp) = GPUs, moe_tp = GPUs/moe_ep",
    "ep-scaled-layout-no-id": "MoE rows without a GPU count in the id, with moe_tp = moe_ep > 1 and "
                              "tp·attention_dp = moe_tp·moe_ep (the same signature): GPUs = moe_ep",
    "moe-wider-than-attention": "MoE rows whose moe_tp·moe_ep exceeds tp·attention_dp (and the id): "
                                "the replica has moe_tp·moe_ep GPUs (the experts must be somewhere)",
    "dense-ignores-moe": "dense models: moe_tp/moe_ep are meaningless; GPUs = tp·attention_dp·pp",
    "agg-batch": "agg rows: running batch of the replica = batch_size·attention_dp_size "
                 "(batch_size is the concurrency per attention-DP rank)",
    "disagg-decode-batch": "disagg rows: the measured TPOT is the decode pool's; its replica is one "
                           "decode worker (decode_tp·decode_attention_dp GPUs), running batch "
                           "decode_batch_size·decode_attention_dp",
    "disagg-batch-from-concurrency": "disagg rows without decode_batch_size: running batch per decode "
                                     "worker = silicon_concurrency / decode_num_workers (1 worker "
                                     "when not stated)",
    "disagg-mtp-assumed": "disagg rows without decode_batch_size (the InferenceX disaggregated "
                          "sweeps, which run their DeepSeek recipes with MTP but do not record it): "
                          "speculative decoding with SPEC_K drafted token per step accepted with "
                          "probability SPEC_ALPHA (DeepSeek-V3's one MTP module, its reported "
                          "85-90% acceptance); predicted, never fitted",
    "concurrency-not-recorded": "the source records no silicon_concurrency (and the id none): the "
                                "running batch is the table's batch_size, unverified",
    "precision-missing": "precision columns empty: the checkpoint's native precision (bf16)",
    "kv-precision": "KV precision is not in the table: fp8 for TensorRT-LLM runs at fp8/fp4, bf16 "
                    "otherwise",
    # conventions of the published measurements converted once into results/data/validation.yaml
    "per-node-to-per-gpu": "a number per node is divided by the node's 8 GPUs",
    "context-from-kv-length": "a disaggregated decode pool's stated mean KV length L: isl = osl = 2L/3 "
                              "(only isl + osl/2 = L enters its prediction)",
    "batch-from-per-user-speed": "running batch not stated: chips × (tok/s per GPU)/(tok/s per user)",
    "layout-not-stated": "MoE decode with no layout stated: EP over every chip with attention-DP",
    "dense-weights-as-attention": "weights mixed within the non-routed part: the attention's precision "
                                  "(the bulk of it) stands for all of it",
    "tpot-from-throughput": "measured output tok/s per GPU (batch/(TPOT·chips)) or per user (1/TPOT) "
                            "read as the TPOT it implies at the stated running batch",
}

#: Speculative decoding assumed by rule ``disagg-mtp-assumed``: tokens drafted per step (DeepSeek-V3's
#: one MTP module, ``num_nextn_predict_layers`` = 1) and the probability a drafted token is accepted
#: (DeepSeek-V3 technical report, arXiv:2412.19437 §5.4.3: 85-90% for the second token).
SPEC_K = 1.0
SPEC_ALPHA = 0.85

#: The table's GEMM and MoE quant modes (aiconfigurator's vocabulary) that are not a precision name
#: (:func:`rooflax.core.specs.precision_name`) → (weights stored, GEMM computed in). Weight-only
#: modes (``*_wo``, ``w4a16_*``) multiply in 16 bits and dequantize every weight they read.
QUANT_MODES: dict[str, tuple[str, str]] = {
    "fp8_block": ("fp8", "fp8"), "fp8_static": ("fp8", "fp8"), "fp8_ootb": ("fp8", "fp8"),
    "sq": ("int8", "int8"),
    "int8_wo": ("int8", "bf16"), "int4_wo": ("int4", "bf16"),
    "w4afp8": ("int4", "fp8"),
    "w4a16_mxfp4": ("mxfp4", "bf16"), "w4a8_mxfp4_mxfp8": ("mxfp4", "fp8"),
    "fp4": ("nvfp4", "nvfp4"),
}


def quant_mode(mode: str) -> tuple[str, str]:
    """(weights stored, GEMM computed in) of a quant mode: :data:`QUANT_MODES`, else a precision
    name or alias stored and computed as is; ValueError naming both vocabularies."""
    from rooflax.core.specs import precision_name

    text = mode.strip().lower()
    if text in QUANT_MODES:
        return QUANT_MODES[text]
    try:
        name = precision_name(text)
    except ValueError:
        raise ValueError(f"expected a precision or one of the quant modes "
                         f"{', '.join(QUANT_MODES)}, found {mode!r}") from None
    return name, name


class Measurement(BaseModel):
    """One measured quantity of one serving run (the replica is what one engine instance serves)."""

    model_config = ConfigDict(extra="forbid")

    row_id: str
    source: str = ""
    engine: str = Field("", description="serving engine: trtllm, sglang, vllm, …")
    engine_version: str = ""
    hardware: str = Field(description="chip name or alias (h100_sxm, b200, …)")
    model: str = Field(description="catalog name, alias or HuggingFace id")
    chips: int = Field(gt=0, description="GPUs of one replica (the decode worker in disagg)")
    tp: int = Field(1, gt=0, description="attention/dense tensor-parallel degree")
    attention_dp: int = Field(1, gt=0, description="data-parallel attention groups")
    pp: int = Field(1, gt=0)
    moe_tp: int = Field(1, gt=0)
    moe_ep: int = Field(1, gt=0, description="expert-parallel degree")
    weights: str = Field("bf16", description="precision of attention/dense weights")
    experts: str = Field("bf16", description="precision of routed-expert weights")
    kv: str = Field("bf16", description="KV-cache precision")
    compute: str = Field("bf16", description="GEMM precision (not stated: the dense weights')")
    isl: float = Field(gt=0, description="input sequence length, tokens")
    osl: float = Field(gt=0, description="output sequence length, tokens")
    concurrency: float | None = Field(None, description="requests in flight in the whole run")
    batch: float = Field(gt=0, description="running batch of one replica, sequences")
    mode: Mode = "agg"
    spec_k: float = Field(0.0, ge=0, description="speculative tokens drafted per step (MTP); 0: off")
    spec_alpha: float = Field(0.0, ge=0, lt=1, description="probability a drafted token is accepted")
    quantity: Quantity = "tpot_ms"
    value: float = Field(gt=0)
    ttft_ms: float | None = Field(None, description="the run's measured TTFT (queueing evidence)")
    rules: list[str] = Field(default_factory=list, description="loader rules applied (RULES)")

    #: Fields that name or report a measurement rather than describe the run measured.
    NOT_INPUTS: ClassVar[frozenset[str]] = frozenset(
        {"row_id", "source", "engine_version", "value", "ttft_ms", "rules"})

    def inputs(self) -> tuple:
        """What the run was, as a table states it (every field but :attr:`NOT_INPUTS`): two rows
        with equal inputs are the same configuration measured twice."""
        return tuple(v for k, v in self.model_dump().items() if k not in self.NOT_INPUTS)

    @model_validator(mode="before")
    @classmethod
    def _compute_defaults_to_weights(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("compute"):
            data = {**data, "compute": data.get("weights", "bf16")}
        return data

    @field_validator("weights", "experts", "kv", "compute")
    @classmethod
    def _known_precision(cls, value: str) -> str:
        from rooflax.core.specs import PRECISION_BYTES, precision_name

        try:
            return precision_name(value)
        except ValueError:
            raise ValueError(f"expected one of {', '.join(PRECISION_BYTES)}, found {value!r}") from None


class Skipped(BaseModel):
    """A row that cannot be expressed, with the reason."""

    row_id: str
    reason: str


# -- the aiconfigurator CSV ----------------------------------------------------------------------
def _num(row: dict[str, str], key: str) -> float | None:
    text = (row.get(key) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _source_field(source: str, key: str) -> float | None:
    m = re.search(rf"{key}=(\d+(?:\.\d+)?)", source or "")
    return float(m.group(1)) if m else None


def _id_gpus(row_id: str) -> int | None:
    m = re.search(r"_tp(\d+)(?:_0)?_ep(?:\d+|none)", row_id)
    return int(m.group(1)) if m else None


def _int(x: float | None, default: int = 1) -> int:
    return default if x is None or x <= 0 else int(round(x))


def _is_moe(model: str) -> bool | None:
    from rooflax.sweeps import catalogs

    try:
        return catalogs.architecture(catalogs.resolve_model(model)).is_moe
    except (catalogs.UnknownNameError, KeyError, TypeError):
        return None


def agg_layout(row: dict[str, str], moe: bool) -> tuple[dict[str, int], list[str]]:
    """chips, tp, attention_dp, pp, moe_tp, moe_ep of an aggregated row, and the rules used."""
    tp, adp, pp = (_int(_num(row, k)) for k in ("tp_size", "attention_dp_size", "pp_size"))
    mtp, mep = _int(_num(row, "moe_tp_size")), _int(_num(row, "moe_ep_size"))
    id_gpus = _id_gpus(row.get("id", ""))
    rules: list[str] = []
    if not moe:
        rules.append("dense-ignores-moe")
        chips = tp * adp * pp
        return {"chips": chips, "tp": tp, "attention_dp": adp, "pp": pp, "moe_tp": 1, "moe_ep": 1}, rules
    attn = tp * adp
    if id_gpus is not None:
        rules.append("gpus-from-id")
        if attn == id_gpus * mep and mep > 1 and attn != id_gpus:
            rules.append("ep-scaled-layout")
            tp, adp = (1, id_gpus) if adp > 1 else (id_gpus, 1)
            mtp, attn = max(id_gpus // mep, 1), id_gpus
    elif mtp == mep > 1 and attn == mtp * mep:
        rules.append("ep-scaled-layout-no-id")
        tp, adp = (1, mep) if adp > 1 else (mep, 1)
        mtp, attn = 1, mep
    chips = max(attn, id_gpus or 0) * pp
    if mtp * mep > chips:
        rules.append("moe-wider-than-attention")
        chips = mtp * mep
    return {"chips": chips, "tp": max(chips // adp // pp, 1), "attention_dp": adp, "pp": pp,
            "moe_tp": mtp, "moe_ep": mep}, rules


def _precisions(row: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """weights, experts, kv and compute precisions of a row (:func:`quant_mode`); ValueError
    naming the column of a mode neither vocabulary knows."""
    gemm = (row.get("gemm_quant_mode") or "").strip().lower()
    moe = (row.get("moe_quant_mode") or "").strip().lower()
    rules: list[str] = []
    if not gemm:
        rules.append("precision-missing")
        gemm = moe = "bf16"
    modes = {}
    for column, mode in (("gemm_quant_mode", gemm), ("moe_quant_mode", moe or gemm)):
        try:
            modes[column] = quant_mode(mode)
        except ValueError as exc:
            raise ValueError(f"{column}: {exc}") from None
    (weights, compute), (experts, _) = modes["gemm_quant_mode"], modes["moe_quant_mode"]
    engine = (row.get("backend") or "").strip().lower()
    rules.append("kv-precision")
    kv = "fp8" if engine == "trtllm" and weights in ("fp8", "nvfp4") else "bf16"
    return {"weights": weights, "experts": experts, "kv": kv, "compute": compute}, rules


def _disagg_layout(row: dict[str, str], moe: bool) -> tuple[dict[str, int], float | None, list[str]]:
    """Layout of one decode worker and its running batch (None: not derivable)."""
    tp, adp, pp = (_int(_num(row, f"decode_{k}")) for k in ("tp_size", "attention_dp_size", "pp_size"))
    mtp, mep = _int(_num(row, "decode_moe_tp_size")), _int(_num(row, "decode_moe_ep_size"))
    rules = ["disagg-decode-batch"]
    chips = tp * adp * pp
    if moe and mtp * mep > chips:
        rules.append("moe-wider-than-attention")
        chips = mtp * mep
    if not moe:
        mtp = mep = 1
    layout = {"chips": chips, "tp": max(chips // adp // pp, 1), "attention_dp": adp, "pp": pp,
              "moe_tp": mtp, "moe_ep": mep}
    per_rank = _num(row, "decode_batch_size")
    if per_rank is not None:
        if _source_field(row.get("silicon_data_source", ""), "silicon_concurrency") is None:
            rules.append("concurrency-not-recorded")
        return layout, per_rank * adp, rules
    conc = _source_field(row.get("silicon_data_source", ""), "silicon_concurrency")
    if conc is None:
        return layout, None, rules
    rules += ["disagg-batch-from-concurrency", "disagg-mtp-assumed"]
    return layout, conc / _int(_num(row, "decode_num_workers")), rules


def measurement_from_row(row: dict[str, str]) -> Measurement | Skipped:
    """One CSV row → its TPOT :class:`Measurement`, or :class:`Skipped` with the reason."""
    rid = (row.get("id") or "").strip() or "?"
    tpot = _num(row, "silicon_tpot_ms")
    if tpot is None or tpot <= 0:
        return Skipped(row_id=rid, reason="silicon_tpot_ms: expected a positive number, found "
                       f"{row.get('silicon_tpot_ms')!r}")
    model = (row.get("model_path") or "").strip()
    moe = _is_moe(model)
    if moe is None:
        return Skipped(row_id=rid, reason=f"model_path {model!r} is not in the model catalog")
    mode = (row.get("mode") or "").strip().lower()
    source = row.get("silicon_data_source", "") or ""
    conc = _source_field(source, "silicon_concurrency")
    if mode == "agg":
        layout, rules = agg_layout(row, moe)
        per_rank = _num(row, "batch_size")
        if per_rank is None:
            return Skipped(row_id=rid, reason="batch_size: not stated")
        batch = per_rank * _int(_num(row, "attention_dp_size"))
        rules.append("agg-batch")
        if conc is None:
            rules.append("concurrency-not-recorded")
        conc = conc if conc is not None else batch
    elif mode == "disagg":
        layout, batch, rules = _disagg_layout(row, moe)
        if batch is None:
            return Skipped(row_id=rid, reason="disagg row states neither decode_batch_size nor "
                           "silicon_concurrency: the decode pool's running batch is unknown")
    else:
        return Skipped(row_id=rid, reason=f"mode: expected agg or disagg, found {mode!r}")
    if layout["pp"] > 1:
        column = "pp_size" if mode == "agg" else "decode_pp_size"
        return Skipped(row_id=rid, reason=f"{column}: pipeline parallelism (found {layout['pp']}) is "
                       "not modelled (its stages run one after another for each token)")
    try:
        prec, prules = _precisions(row)
    except ValueError as exc:
        return Skipped(row_id=rid, reason=str(exc))
    isl, osl = _num(row, "isl"), _num(row, "osl")
    spec = ({"spec_k": SPEC_K, "spec_alpha": SPEC_ALPHA} if "disagg-mtp-assumed" in rules else {})
    try:
        return Measurement(
            row_id=rid, source=source, engine=(row.get("backend") or "").strip().lower(),
            engine_version=(row.get("backend_version") or "").strip(),
            hardware=(row.get("system") or "").strip(), model=model, **layout, **prec,
            isl=isl or 0.0, osl=osl or 0.0, concurrency=conc, batch=batch,
            mode="agg" if mode == "agg" else "disagg-decode", quantity="tpot_ms", value=tpot,
            ttft_ms=_num(row, "silicon_ttft_ms"), rules=rules + prules, **spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        return Skipped(row_id=rid, reason=f"{'.'.join(map(str, err['loc']))}: {err['msg']}")


def read_aiconfigurator_csv(path: str | Path) -> list[Measurement | Skipped]:
    """Every row of an aiconfigurator-format CSV, as a Measurement or a Skipped (in file order)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"id", "model_path", "system", "mode", "silicon_tpot_ms"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: columns {sorted(missing)} missing (expected the "
                             "aiconfigurator silicon_sample.csv columns)")
        return [measurement_from_row(row) for row in reader]


def read_yaml(path: str | Path) -> list[Measurement | Skipped]:
    """A structured YAML file: ``measurements: [{Measurement fields}, …]``, and optionally
    ``not_expressed: [{id, reason, source}, …]`` (published numbers the schema cannot hold),
    returned as Skipped with their reasons."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    items = data.get("measurements") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"{path}: measurements: expected a list of measurements, found "
                         f"{type(items).__name__}")
    out: list[Measurement | Skipped] = []
    for i, item in enumerate(items):
        rid = str(item.get("row_id", f"#{i}")) if isinstance(item, dict) else f"#{i}"
        try:
            out.append(Measurement.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            out.append(Skipped(row_id=rid, reason=f"{'.'.join(map(str, err['loc']))}: {err['msg']}"))
    for i, item in enumerate(data.get("not_expressed") or []):
        item = item if isinstance(item, dict) else {}
        out.append(Skipped(row_id=str(item.get("id", f"not_expressed #{i}")),
                           reason=f"not expressed: {item.get('reason', 'no reason given')}"))
    return out


def as_tpot(m: Measurement) -> Measurement:
    """``m`` as the TPOT it implies (rule ``tpot-from-throughput``); ttft_ms and tpot_ms unchanged.

    output tok/s per GPU v at running batch B on n chips: TPOT = B/(v·n); tok/s per user v: 1/v."""
    if m.quantity == "output_tok_s_per_gpu":
        tpot_ms = 1e3 * m.batch / (m.value * m.chips)
    elif m.quantity == "tok_s_per_user":
        tpot_ms = 1e3 / m.value
    else:
        return m
    return m.model_copy(update={"quantity": "tpot_ms", "value": tpot_ms,
                                "rules": [*m.rules, "tpot-from-throughput"]})


def read(path: str | Path) -> list[Measurement | Skipped]:
    """A measurement file by its kind: ``.csv`` (aiconfigurator) or ``.yaml``/``.yml`` (structured)."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        return read_aiconfigurator_csv(p)
    if p.suffix.lower() in (".yaml", ".yml"):
        return read_yaml(p)
    raise ValueError(f"{path}: expected a .csv (aiconfigurator) or .yaml measurement file")


def write_yaml(items: list[Measurement], path: str | Path) -> None:
    """The structured YAML form of measurements."""
    rows: list[dict[str, Any]] = [m.model_dump(exclude_defaults=False) for m in items]
    Path(path).write_text(yaml.safe_dump({"measurements": rows}, sort_keys=False), encoding="utf-8")


def default_csv() -> Path:
    """The calibration table: ``shared/reference/measurements/decode_silicon_train.csv`` in a
    folder above the checkout when present, else the unchanged copy shipped as package data."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        shared = parent / "shared" / "reference" / "measurements" / "decode_silicon_train.csv"
        if shared.is_file():
            return shared
    return Path(str(resources.files("rooflax.sweeps") / "data" / "decode_silicon_train.csv"))
