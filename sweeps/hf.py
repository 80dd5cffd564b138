"""A Hugging Face ``config.json`` as a :class:`~rooflax.core.arch.Architecture` (and a catalog entry).

Families understood (``model_type``, of the config or of its nested ``text_config``):

* dense GQA — ``llama``, ``mistral``, ``qwen2``, ``qwen3``;
* MoE — ``qwen2_moe``, ``qwen3_moe``, ``mixtral``, ``gpt_oss``, ``minimax_m2``, ``glm4_moe``;
* MoE + MLA — ``deepseek_v2``, ``deepseek_v3``, ``kimi_k2`` (and ``kimi_k25`` around it);
  with DeepSeek sparse attention (``index_topk``, ``index_n_heads``, ``index_head_dim``)
  ``deepseek_v32`` (DeepSeek-V3.2) and ``glm_moe_dsa`` (GLM-5);
* hybrid linear attention (Gated DeltaNet) — ``qwen3_next``, ``qwen3_5``, ``qwen3_5_moe``;
* sliding-window hybrids — ``gemma3`` / ``gemma3_text``, ``gpt_oss`` (``layer_types``).

Every number comes from the file; a field the family needs and the file lacks (or has with a
wrong type) raises :class:`HFConfigError` with one line naming the file and the field. The
vision tower and MTP modules are not counted (as in the catalog).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rooflax.core.arch import Architecture
from rooflax.core.specs import precision_name

DENSE = {"llama", "mistral", "qwen2", "qwen3"}
MOE = {"qwen2_moe", "qwen3_moe", "mixtral", "gpt_oss", "minimax_m2", "glm4_moe"}
MLA = {"deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2", "glm_moe_dsa"}
HYBRID_LINEAR = {"qwen3_next", "qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text"}
GEMMA = {"gemma3", "gemma3_text"}
FAMILIES = DENSE | MOE | MLA | HYBRID_LINEAR | GEMMA
#: Families with q/k RMSNorm of head_dim weights when the config does not say ``use_qk_norm``.
QK_NORM = {"qwen3", "qwen3_moe", "minimax_m2"} | HYBRID_LINEAR | GEMMA
#: Families whose configs default ``tie_word_embeddings`` to true (Transformers' class defaults).
TIED_BY_DEFAULT = GEMMA


def _dtype(value: Any) -> str | None:
    """The precision of a config's dtype string (``"bfloat16"`` → ``"bf16"``), None if unknown."""
    try:
        return precision_name(str(value)) if value else None
    except ValueError:
        return None


class HFConfigError(ValueError):
    """A config.json rooflax cannot read: one line naming the file and the field."""


class _Fields:
    """Typed access to a config's fields, errors naming the file."""

    def __init__(self, data: dict[str, Any], path: str):
        self.data, self.path = data, path

    def _fail(self, field: str, expected: str, found: Any) -> HFConfigError:
        shown = "missing" if found is _MISSING else repr(found)
        return HFConfigError(f"{self.path}: field {field!r}: expected {expected}, found {shown}")

    def int(self, field: str, default: Any = None, *, alt: tuple[str, ...] = ()) -> int:
        """An integer field (the first of ``field``, ``alt`` present and not null)."""
        for name in (field, *alt):
            v = self.data.get(name)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or v < 0:
                    raise self._fail(name, "a non-negative integer", v)
                return int(v)
        if default is None:
            raise self._fail(field, "a non-negative integer", _MISSING)
        return default

    def bool(self, field: str, default: bool) -> bool:
        v = self.data.get(field)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self._fail(field, "true or false", v)
        return v

    def list_of(self, field: str) -> list | None:
        v = self.data.get(field)
        if v is None:
            return None
        if not isinstance(v, list):
            raise self._fail(field, "a list", v)
        return v


_MISSING = object()


def read(path: str | Path) -> dict[str, Any]:
    """The JSON object of a config file (HFConfigError if unreadable or not an object)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise HFConfigError(f"{path}: cannot read the config file: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise HFConfigError(f"{path}: expected JSON, found a syntax error at line {e.lineno}: "
                            f"{e.msg}") from None
    if not isinstance(data, dict):
        raise HFConfigError(f"{path}: expected a JSON object of fields, found {type(data).__name__}")
    return data


def text_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The language model's fields: a nested ``text_config`` over the top level (multimodal)."""
    text = data.get("text_config")
    if not isinstance(text, dict):
        return data
    merged = {k: v for k, v in data.items() if k != "text_config"}
    merged.update(text)
    return merged


def _family(f: _Fields) -> str:
    mt = f.data.get("model_type")
    if mt == "kimi_k25":  # the top level of a kimi_k25 file; its text_config is deepseek-like
        mt = "kimi_k2"
    if mt not in FAMILIES:
        raise f._fail("model_type", f"one of {', '.join(sorted(FAMILIES))}", mt if mt else _MISSING)
    return mt


def _precision(f: _Fields) -> tuple[str, str | None]:
    """(native precision, routed-expert precision or None) of the checkpoint."""
    dtype = f.data.get("torch_dtype") or f.data.get("dtype") or "bfloat16"
    base = _dtype(dtype) or "bf16"  # a dtype rooflax has no bytes for: the weights as bf16
    q = f.data.get("quantization_config")
    if not isinstance(q, dict):
        return base, None
    method = str(q.get("quant_method", "")).lower()
    if method == "fp8":
        return "fp8", None
    if method == "mxfp4":
        return base, "mxfp4"
    return base, None


def _attention(f: _Fields, family: str, heads: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if family in MLA:
        out["kv_lora_rank"] = f.int("kv_lora_rank")
        out["q_lora_rank"] = f.int("q_lora_rank", 0)
        out["qk_nope_head_dim"] = f.int("qk_nope_head_dim")
        out["qk_rope_head_dim"] = f.int("qk_rope_head_dim")
        out["v_head_dim"] = f.int("v_head_dim")
        out["num_kv_heads"] = heads
        out["head_dim"] = out["qk_nope_head_dim"] + out["qk_rope_head_dim"]
        if f.int("index_topk", 0):  # DeepSeek sparse attention (DeepSeek-V3.2, GLM-5)
            out["index_topk"] = f.int("index_topk")
            out["index_n_heads"] = f.int("index_n_heads")
            out["index_head_dim"] = f.int("index_head_dim")
        return out
    out["num_kv_heads"] = f.int("num_key_value_heads", heads)
    out["head_dim"] = f.int("head_dim", 0) or f.int("hidden_size") // heads
    out["attention_bias"] = f.bool("attention_bias", family == "gpt_oss")
    out["qk_norm"] = f.bool("use_qk_norm", family in QK_NORM)
    if out["qk_norm"] and f.data.get("qk_norm_type") == "per_layer":
        out["qk_norm_type"] = "per_layer"
    out["attention_sinks"] = family == "gpt_oss"
    return out


def _moe(f: _Fields, family: str) -> dict[str, Any]:
    if family in DENSE or family in GEMMA or (family in HYBRID_LINEAR
                                               and not f.int("num_experts", 0)):
        return {}
    experts = f.int("num_experts", alt=("n_routed_experts", "num_local_experts"))
    if not experts:
        return {}
    out: dict[str, Any] = {
        "num_experts": experts,
        "experts_per_token": f.int("num_experts_per_tok", alt=("experts_per_token",)),
        "moe_intermediate_size": f.int("moe_intermediate_size", 0) or f.int("intermediate_size"),
        "first_dense_layers": f.int("first_k_dense_replace", 0),
        "router_bias": (f.data.get("topk_method") == "noaux_tc" or family == "gpt_oss"
                        or f.bool("use_routing_bias", False)),
        "expert_bias": family == "gpt_oss",
    }
    shared = f.int("n_shared_experts", 0)
    shared_size = f.int("shared_expert_intermediate_size", 0)
    if shared_size:  # Qwen MoE: one gated shared expert of its own size
        out.update(shared_experts=1, shared_expert_intermediate_size=shared_size,
                   shared_expert_gate=True)
    elif shared:
        out["shared_experts"] = shared
    dense_only = f.list_of("mlp_only_layers") or []
    if dense_only or f.int("decoder_sparse_step", 1) != 1:
        if dense_only != list(range(len(dense_only))) or f.int("decoder_sparse_step", 1) != 1:
            raise f._fail("mlp_only_layers", "leading layers [0, 1, …] and decoder_sparse_step 1",
                          f.data.get("mlp_only_layers"))
        out["first_dense_layers"] = len(dense_only)
    return out


def _layer_pattern(f: _Fields, family: str, layers: int) -> dict[str, Any]:
    """Sliding-window and linear-attention layers (``layer_types`` or the family's rule)."""
    out: dict[str, Any] = {}
    types = f.list_of("layer_types")
    if types is not None and len(types) != layers:
        raise f._fail("layer_types", f"{layers} entries (num_hidden_layers)", f"{len(types)} entries")
    if family in HYBRID_LINEAR:
        out.update(
            linear_num_key_heads=f.int("linear_num_key_heads"),
            linear_key_head_dim=f.int("linear_key_head_dim"),
            linear_num_value_heads=f.int("linear_num_value_heads"),
            linear_value_head_dim=f.int("linear_value_head_dim"),
            linear_conv_kernel_dim=f.int("linear_conv_kernel_dim"),
            attn_output_gate=f.bool("attn_output_gate", True),
        )
        if types is not None:
            out["layer_types"] = tuple(str(t) for t in types)
        else:
            out["full_attention_interval"] = f.int("full_attention_interval")
        ssm = _dtype(f.data.get("mamba_ssm_dtype"))
        if ssm:
            out["linear_state_precision"] = ssm
    sliding = 0
    if types is not None:
        sliding = sum(t == "sliding_attention" for t in types)
    elif family in GEMMA:
        pattern = f.int("sliding_window_pattern", alt=("_sliding_window_pattern",))
        sliding = layers - layers // pattern if pattern else 0
    elif f.data.get("sliding_window") is not None and f.bool("use_sliding_window", True):
        sliding = layers  # Mistral-style: every layer windowed
    if sliding:
        out["local_layers"] = sliding
        out["sliding_window"] = f.int("sliding_window")
    return out


def architecture_fields(data: dict[str, Any], path: str = "config.json") -> dict[str, Any]:
    """Keyword arguments of :class:`Architecture` from a parsed config.json (non-defaults only)."""
    f = _Fields(text_fields(data), str(path))
    family = _family(f)
    heads = f.int("num_attention_heads")
    layers = f.int("num_hidden_layers")
    moe = _moe(f, family)
    native, experts_p = _precision(f)
    fields: dict[str, Any] = {
        "hidden_size": f.int("hidden_size"),
        "num_layers": layers,
        "num_heads": heads,
        "intermediate_size": f.int("intermediate_size", 0 if moe else None),
        "vocab_size": f.int("vocab_size"),
        "tie_embeddings": f.bool("tie_word_embeddings", family in TIED_BY_DEFAULT),
        **_attention(f, family, heads),
        **moe,
        **_layer_pattern(f, family, layers),
        "native_precision": native,
        "native_expert_precision": experts_p,
    }
    if family in GEMMA:
        fields["norms_per_layer"] = 4
    defaults = {x.name: x.default for x in dataclasses.fields(Architecture)}
    return {k: v for k, v in fields.items() if k not in defaults or v != defaults[k]
            or k in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                     "intermediate_size", "vocab_size")}


def architecture(path: str | Path) -> Architecture:
    """The :class:`Architecture` of a config.json file."""
    return Architecture(**architecture_fields(read(path), str(path)))


def model_name(data: dict[str, Any], path: str | Path) -> str:
    """A name for the model: ``_name_or_path`` if the file has one, else its folder's name."""
    given = data.get("_name_or_path")
    if isinstance(given, str) and given.strip():
        return given.strip()
    p = Path(path).resolve()
    return p.parent.name if p.name == "config.json" and p.parent.name else p.stem


def catalog_entry(path: str | Path) -> dict[str, Any]:
    """A models.yaml-shaped entry (name, architecture, native precision, source) for a config.json."""
    data = read(path)
    arch = architecture_fields(data, str(path))
    name = model_name(data, path)
    return {
        "name": name,
        "type": "from config.json",
        "architecture": arch,
        "native_precision": arch.get("native_precision", "bf16"),
        "source": [f"Hugging Face config.json {path}"],
    }


def register(path: str | Path) -> str:
    """Add a config.json's model to this process's catalog; returns its catalog key."""
    from . import catalogs

    entry = catalog_entry(path)
    key = "hf:" + entry["name"].lower()
    catalogs.add_model(key, {**entry, "aliases": [entry["name"], str(path)]})
    return key
