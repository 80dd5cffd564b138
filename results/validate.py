"""``rooflax validate [FILE]``: the model against published measurements.

For every entry of a validation file (the shape of ``../shared/reference/validation.yaml``:
``validation: [{id, hardware, model, precision, parallelism, conditions, measured, …}]``) that
the model can express, predict the measured quantity under the entry's stated conditions:

* **bound** — every efficiency at 1 (peak FLOPS, peak HBM and link bandwidth, no latency,
  overlap): a roofline upper bound on throughput; a measurement above it is a modelling error;
* **predicted** — with the default efficiencies of ``sweeps/catalog/efficiency.yaml``.

Entries (or quantities) it cannot express are returned as ``skipped`` with the reason. Text
fields are parsed loosely (hardware and model names by catalog alias; ``EP144``, ``DP attention``,
``attention TP8``, ``N nodes``, ``FP8``/``NVFP4``; measured keys such as
``batch256_kv2000_output_tok_s_per_node`` carry their own conditions), so any file of the same
shape works.

Assumptions (stated in every row's ``conditions``): 8 GPUs per node unless the text says
otherwise; a replica larger than one node communicates over the scale-out network at
``SCALE_OUT_BW`` per GPU (400 Gb/s InfiniBand NDR / CX-7); decode context = the stated KV length
(or ISL + OSL/2); prefill prompts per GPU = tokens_per_device / input length.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

#: Scale-out bandwidth per GPU, bytes/s, one direction: 400 Gb/s NDR InfiniBand (ConnectX-7).
SCALE_OUT_BW = 50e9
GPUS_PER_NODE = 8

COLUMNS = ("id", "quantity", "measured", "bound", "predicted", "measured/bound",
           "measured/predicted", "conditions")


def default_path() -> Path:
    """The validation file: ``../shared/reference/validation.yaml`` beside the repository when
    present (the maintained one), else the copy shipped as package data."""
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "validation.yaml"
    if shared.is_file():
        return shared
    from importlib import resources

    return Path(str(resources.files("rooflax.results") / "data" / "validation.yaml"))


# -- parsing -----------------------------------------------------------------------------------
def _norm(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def _match(kind: str, text: str) -> str | None:
    from rooflax.sweeps import catalogs

    names = catalogs.hardware_names() if kind == "hardware" else catalogs.model_names()
    entry = catalogs.hardware_entry if kind == "hardware" else catalogs.model_entry
    table = []
    for key in names:
        e = entry(key)
        if kind == "hardware" and e.get("preset_of"):
            continue
        for alias in (key, *e.get("aliases", [])):
            table.append((_norm(alias), key))
    t = _norm(text)
    for alias, key in sorted(table, key=lambda x: -len(x[0])):
        if alias and alias in t:
            return key
    return None


def _number(value: Any) -> float | None:
    """20-22 → 21, '~84-92' → 88, 1.5 → 1.5; None if not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    nums = re.findall(r"\d+(?:\.\d+)?", str(value))
    return sum(map(float, nums[:2])) / len(nums[:2]) if nums and len(nums) <= 2 else None


def _length(key: str) -> float | None:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kK]?)", str(key))
    return None if not m else float(m.group(1)) * (1024 if m.group(2) else 1)


def _layout(entry: dict[str, Any]) -> dict[str, Any]:
    """chips, layout kind, attention TP, redundant expert slots, nodes from the text fields."""
    par = str(entry.get("parallelism", ""))
    hw_text = str(entry.get("hardware", ""))
    cond = entry.get("conditions") or {}
    out: dict[str, Any] = {"kind": "tp", "tp": None, "slots": None}
    ep = re.search(r"\bEP\s*(\d+)", par)
    if ep:
        out["chips"] = float(ep.group(1))
        out["kind"] = "ep"
    elif cond.get("nodes"):
        out["chips"] = float(cond["nodes"]) * GPUS_PER_NODE
    else:
        m = re.search(r"(\d+)\s*x\s*(?:\d+\s*x\s*)?", hw_text)
        out["chips"] = float(m.group(1)) if m else None
    if re.search(r"(DP\s*attention|attention\s*DP|DP\d+)", par, re.I) and out["kind"] == "ep":
        out["kind"] = "ep"
    tp = re.search(r"attention\s*TP\s*(\d+)", par, re.I)
    if tp:
        out["tp"] = float(tp.group(1))
        out["kind"] = "tp-ep" if re.search(r"EP\s*\d", par) else "tp"
    red = re.search(r"(\d+)\s*redundant experts", par)
    if red:
        out["slots"] = float(red.group(1))
    return out


def _precision(entry: dict[str, Any]) -> tuple[str, str]:
    text = str(entry.get("precision", "")) + " " + str(entry.get("model", ""))
    t = text.lower()
    weights = "fp4" if "fp4" in t else "fp8" if "fp8" in t else "native"
    kv = "fp8" if re.search(r"fp8 kv", t) else "bf16"
    return weights, kv


# -- the model of one entry --------------------------------------------------------------------
def _trees(entry: dict[str, Any], chips: float, peak: bool):
    from rooflax.core import parallel
    from rooflax.sweeps import catalogs
    from rooflax.sweeps import efficiency as eff

    hw_key = _match("hardware", entry.get("hardware", ""))
    model_key = _match("model", entry.get("model", ""))
    weights, kv = _precision(entry)
    arch = catalogs.architecture(model_key)
    lay = _layout(entry)
    precision = "fp8" if weights == "native" and arch.native_precision == "fp8" else (
        weights if weights != "native" else "bf16")
    if precision == "fp4" and catalogs.hardware_entry(hw_key)["peak_tflops_dense"].get("fp4") is None:
        precision = "fp8"
    link = eff.link_bw(hw_key) if chips <= GPUS_PER_NODE else SCALE_OUT_BW
    hw = eff.hardware(hw_key, precision=precision, chips=chips, peak=peak, link_bw=link)
    if peak:
        hw = hw.replace(link_eff=1.0)
    slots = lay["slots"]
    if slots is not None:
        slots = arch.num_experts + slots
    hw = parallel.layout(hw, lay["kind"], tp=lay["tp"], expert_slots=slots,
                         num_experts=arch.num_experts)
    if lay["kind"] == "tp" and not entry.get("parallelism") and arch.is_moe:
        hw = parallel.layout(hw, "ep", expert_slots=slots, num_experts=arch.num_experts)
    # beyond one node, DeepSeek-V3's node-limited routing: ≤ 4 nodes per token over the network
    route = 4.0 if chips > GPUS_PER_NODE and arch.is_moe else float("inf")
    model = parallel.extended_model(arch, weights=weights, kv=kv, route_limit=route,
                                    dispatch_bytes=1.0 if "fp8 dispatch" in str(
                                        entry.get("precision", "")).lower() else 2.0)
    return hw, model, arch, hw_key, model_key, precision


def catalogs_is_moe(model_key: str) -> bool:
    from rooflax.sweeps import catalogs

    return catalogs.architecture(model_key).is_moe


def _resolve(entry: dict[str, Any]) -> tuple[str | None, str | None]:
    return _match("hardware", entry.get("hardware", "")), _match("model", entry.get("model", ""))


def _decode(entry, chips, batch_per_gpu, context, per, spec=None):
    """Predicted output tok/s per node/GPU/user: (bound, predicted)."""
    from rooflax import core as rc

    out = []
    for peak in (True, False):
        hw, m, *_ = _trees(entry, chips, peak)
        wl = rc.Workload(batch=batch_per_gpu * chips, context=context)
        if spec:
            wl = wl.replace(spec_k=spec[0], spec_alpha=spec[1])
        tps = float(rc.throughput(hw, m, wl))
        if per == "user":
            out.append(float(rc.tokens_per_second_per_user(hw, m, wl)))
        else:
            out.append(tps / chips * (GPUS_PER_NODE if per == "node" else 1.0))
    return out


def _prefill(entry, chips, prompt, prompts_per_gpu, per):
    from rooflax import core as rc
    from rooflax.core import parallel, prefill

    out = []
    for peak in (True, False):
        hw, m, arch, *_ = _trees(entry, chips, peak)
        wl = rc.Workload(prompt=prompt, prefill_batch=prompts_per_gpu * chips)
        tps = float(prefill.input_throughput(hw, m, wl, parallel.prefill_attn_flops(arch)))
        out.append(tps / chips * (GPUS_PER_NODE if per == "node" else 1.0))
    return out


def _alpha_for(tau: float, k: float) -> float:
    """Acceptance α giving τ tokens per step with k drafts (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        t = (1 - mid ** (k + 1)) / (1 - mid) if mid < 1 else k + 1
        lo, hi = (mid, hi) if t < tau else (lo, mid)
    return (lo + hi) / 2


def _row(eid, quantity, measured, pair, conditions):
    bound, pred = pair
    return {"id": eid, "quantity": quantity, "measured": measured, "bound": bound,
            "predicted": pred, "measured/bound": measured / bound,
            "measured/predicted": measured / pred, "conditions": conditions, "status": "ok",
            "reason": ""}


def _skip(eid, quantity, reason):
    return {"id": eid, "quantity": quantity, "measured": None, "bound": None, "predicted": None,
            "measured/bound": None, "measured/predicted": None, "conditions": "",
            "status": "skipped", "reason": reason}


def _entry_rows(e: dict[str, Any]) -> list[dict[str, Any]]:
    eid = str(e.get("id", "?"))
    measured = e.get("measured") or {}
    hw_key, model_key = _resolve(e)
    if not isinstance(measured, dict) or not measured:
        return [_skip(eid, "-", "no measured numbers")]
    if hw_key is None:
        return [_skip(eid, "-", f"hardware {e.get('hardware')!r} not in the catalog")]
    if model_key is None:
        return [_skip(eid, "-", f"model {e.get('model')!r} not in the catalog")]
    lay = _layout(e)
    chips = lay["chips"]
    if not chips:
        return [_skip(eid, "-", "number of chips per replica not stated")]
    cond = e.get("conditions") or {}
    rows: list[dict[str, Any]] = []
    if lay["kind"] == "tp" and not e.get("parallelism") and catalogs_is_moe(model_key):
        lay["kind"] = "ep (assumed: MoE, layout not stated)"
    where = f"{hw_key}×{chips:g} {lay['kind']}" + (f" tp{lay['tp']:g}" if lay["tp"] else "")
    # decode context and batch stated on the entry
    context = _number(cond.get("kv_cache_length") or e.get("avg_kv_len_per_output_token") or "")
    if context is None and cond.get("isl") is not None and cond.get("osl") is not None:
        context = float(cond["isl"]) + float(cond["osl"]) / 2
    per_user = _number(e.get("per_user_output_tok_s", "")) if e.get("per_user_output_tok_s") else None
    concurrency = _number(cond.get("concurrency", "")) if cond.get("concurrency") is not None else None
    for key, value in measured.items():
        q = str(key)
        try:
            if re.search(r"(output_tok_s|decode_tok_s|output_tps)_per_(node|gpu)", q) and not isinstance(value, dict):
                if "derived" in q or "simulated" in q or "previous" in q or "baseline" in q:
                    rows.append(_skip(eid, q, "derived/simulated/earlier number, not a measurement"))
                    continue
                per = "node" if "per_node" in q else "gpu"
                mb = re.search(r"batch(\d+)", q)
                mk = re.search(r"kv(\d+)", q)
                ctx = float(mk.group(1)) if mk else context
                val = _number(value)
                if mb:
                    b = float(mb.group(1))
                elif cond.get("batch_per_gpu") is not None:
                    b = float(cond["batch_per_gpu"])
                elif per_user:
                    b = (val / (GPUS_PER_NODE if per == "node" else 1)) / per_user
                else:
                    rows.append(_skip(eid, q, "batch (or per-user speed) not stated"))
                    continue
                if ctx is None:
                    rows.append(_skip(eid, q, "context (KV length) not stated"))
                    continue
                pair = _decode(e, chips, b, ctx, per)
                rows.append(_row(eid, q, val, pair, f"{where}, decode batch/GPU {b:.0f}, L={ctx:.0f}"))
            elif q.startswith("tps_per_user") and concurrency is not None:
                if "relaxed" in q:
                    rows.append(_skip(eid, q, "relaxed acceptance: acceptance rate not stated"))
                    continue
                mtp = re.search(r"mtp(\d+)", q)
                spec = None
                if mtp:
                    k = float(mtp.group(1))
                    acc = (measured.get("mtp_acceptance") or {}).get(f"MTP{int(k)}")
                    if acc is None:
                        rows.append(_skip(eid, q, "MTP acceptance not stated"))
                        continue
                    spec = (k, _alpha_for(float(acc), k))
                if context is None:
                    rows.append(_skip(eid, q, "context not stated"))
                    continue
                pair = _decode(e, chips, concurrency / chips, context, "user", spec)
                extra = f", MTP k={spec[0]:g} α={spec[1]:.3f}" if spec else ""
                rows.append(_row(eid, q, float(value), pair,
                                 f"{where}, batch {concurrency:g}, L={context:.0f}{extra}"))
            elif q.startswith("input_tok_s_per_node") or q.startswith("input_tok_s_per_gpu"):
                if "incl_cache" in q:
                    rows.append(_skip(eid, q, "includes KV-cache hits (tokens not computed)"))
                    continue
                tpd = _number(cond.get("tokens_per_device", "")) if cond.get("tokens_per_device") else None
                if isinstance(value, dict):
                    items = [(f"{q}[{k}]", _length(k), v) for k, v in value.items()]
                else:
                    items = [(q, _number(cond.get("input_length", "")) if cond.get("input_length") else None, value)]
                for name, plen, v in items:
                    if plen is None:
                        rows.append(_skip(eid, name, "prompt length not stated"))
                        continue
                    tokens = tpd or _number((measured.get("profile_case") or {}).get("tokens_per_device", "")) \
                        if isinstance(measured.get("profile_case"), dict) else tpd
                    if not tokens:
                        rows.append(_skip(eid, name, "tokens per device (prefill batch) not stated"))
                        continue
                    pair = _prefill(e, chips, plen, tokens / plen, "node" if "per_node" in q else "gpu")
                    rows.append(_row(eid, name, float(_number(v)), pair,
                                     f"{where}, prefill P={plen:.0f}, {tokens:.0f} tokens/GPU"))
            elif isinstance(value, dict) and q == "profile_case":
                continue
            elif isinstance(value, (int, float, str, dict)):
                rows.append(_skip(eid, q, "not a quantity the model predicts"))
        except (ValueError, KeyError, TypeError) as exc:  # a field we could not read
            rows.append(_skip(eid, q, f"could not express: {exc}"))
    return rows


def validate(path: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per (entry, measured quantity): measured, bound, predicted and their ratios, or skipped."""
    p = Path(path) if path is not None else default_path()
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    entries = data.get("validation", data if isinstance(data, list) else [])
    rows: list[dict[str, Any]] = []
    for entry in entries:
        if isinstance(entry, dict):
            rows.extend(_entry_rows(entry))
    return rows


def ratio_band(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(min, max) of measured/predicted over the evaluated rows (NaN, NaN if none)."""
    r = [row["measured/predicted"] for row in rows if row["status"] == "ok"]
    return (min(r), max(r)) if r else (math.nan, math.nan)


def format_table(rows: list[dict[str, Any]]) -> str:
    def f(x):
        return "-" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))

    ok = [r for r in rows if r["status"] == "ok"]
    lines = [" | ".join(COLUMNS)]
    lines += [" | ".join(f(r[c]) for c in COLUMNS) for r in ok]
    lo, hi = ratio_band(rows)
    lines.append(f"measured/predicted band: {lo:.3g} – {hi:.3g} over {len(ok)} rows; "
                 f"max measured/bound: {max((r['measured/bound'] for r in ok), default=math.nan):.3g}")
    lines.append("skipped:")
    lines += [f"  {r['id']}: {r['quantity']}: {r['reason']}" for r in rows if r["status"] != "ok"]
    return "\n".join(lines)


def register(app) -> None:
    """Add ``rooflax validate [FILE] [--json]`` to a Typer app."""
    import json

    import typer

    @app.command("validate")
    def validate_cmd(
        file: Path | None = typer.Argument(None, help="validation YAML (default: ../shared/reference/validation.yaml, else the copy shipped with rooflax)"),
        as_json: bool = typer.Option(False, "--json", help="rows as JSON"),
        cv: str | None = typer.Option(None, "--cv", help="measurement tables: leave-one-group-out "
                                      "cross-validation by system, model or engine"),
        per: str | None = typer.Option(None, "--per", help="with --cv: calibrate per engine"),
        calibration: Path | None = typer.Option(None, "--calibration", help="measurement tables: "
                                                "calibration YAML (default: the shipped one)"),
    ) -> None:
        """Compare the model with measurements: measured, bound, predicted (a measurement CSV/YAML: TPOT per row + summary)."""
        path = file or default_path()
        if not Path(path).exists():
            typer.echo(f"error: no such file: {path}", err=True)
            raise typer.Exit(2)
        from . import silicon

        if silicon.is_measurement_file(Path(path)):
            silicon.run_validate(Path(path), as_json=as_json, cv=cv, per=per, calibration=calibration)
            return
        rows = validate(path)
        if as_json:
            typer.echo(json.dumps({"schema": "rooflax.validate/1", "file": str(path), "rows": rows},
                                  indent=1, default=str))
        else:
            typer.echo(format_table(rows))
