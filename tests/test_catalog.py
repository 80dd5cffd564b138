"""The shipped catalogs (``rooflax.sweeps.catalogs``): names, entries, pytrees, errors.

Expected numbers are copied from the project's reference tables, not from this code.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import pytest
import yaml

from rooflax.core.specs import Hardware, Model
from rooflax.sweeps import catalogs

HARDWARE_KEYS = [
    "a100", "h100-sxm", "h100-pcie", "h200", "h800", "h20", "b200", "gb200", "b300", "gb300",
    "mi300x", "mi325x", "mi355x", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-ironwood",
    "gaudi3", "l40s",
]
PRESETS = {"gb200-nvl72": ("gb200", 72), "hgx-h100-8": ("h100-sxm", 8),
           "hgx-h200-8": ("h200", 8), "hgx-b200-8": ("b200", 8)}
MODEL_KEYS = [
    "deepseek-v3", "deepseek-v2", "deepseek-v2-lite", "kimi-k2", "llama-3.1-8b",
    "llama-3.1-70b", "llama-3.1-405b", "llama-2-70b", "qwen3-235b-a22b", "qwen3-30b-a3b",
    "gpt-oss-120b", "gpt-oss-20b", "mixtral-8x7b", "gemma-3-27b", "qwen3-32b",
    "qwen3.5-397b-a17b", "kimi-k2.5", "glm-5", "minimax-m2.5", "qwen3-8b",
    "qwen3-coder-480b-a35b", "deepseek-v3.2",
]
# Published counts are rounded ("2.4B" for DeepSeek-V2-Lite, whose derived and reference
# active count is 2.451B: the 2% band plus half the last published digit).
# "17B", "10B": ± half a unit.
# GLM-5's "40B" active: 40.1B derived without its DSA indexer (0.73B, read every step and counted
# here: 40.8B), which the published figure does not seem to include.
PUBLISHED_REL = {"deepseek-v2-lite": 0.022, "qwen3.5-397b-a17b": 0.03, "minimax-m2.5": 0.05,
                 "glm-5": 0.025}
# Kimi-K2.5's total is published as "1T" (Kimi-K2's, same backbone, as 1.04T): 3%.
PUBLISHED_TOTAL_REL = {"kimi-k2.5": 0.03}


def test_expected_keys_present():
    assert set(HARDWARE_KEYS) | set(PRESETS) <= set(catalogs.hardware_names())
    assert set(MODEL_KEYS) == set(catalogs.model_names())


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_derived_counts_match_published(key):
    entry = catalogs.model_entry(key)
    arch = catalogs.architecture(key)
    rel = PUBLISHED_REL.get(key, 0.02)
    with_embedding = entry["params_published_active_includes_input_embedding"]
    rel_total = PUBLISHED_TOTAL_REL.get(key, 0.02)
    assert arch.n_total() == pytest.approx(entry["params_published_total"], rel=rel_total)
    assert arch.n_active(with_embedding) == pytest.approx(entry["params_published_active"], rel=rel)


@pytest.mark.parametrize("key", MODEL_KEYS)
def test_published_counts_are_numbers(key):
    entry = catalogs.model_entry(key)
    assert isinstance(entry["params_published_total"], float)
    assert isinstance(entry["params_published_active"], float)


@pytest.mark.parametrize("kind,key", [("hardware", k) for k in catalogs.hardware_names()]
                         + [("model", k) for k in catalogs.model_names()])
def test_every_entry_has_a_source(kind, key):
    entry = catalogs.hardware_entry(key) if kind == "hardware" else catalogs.model_entry(key)
    assert entry["source"] and all(isinstance(s, str) and s.strip() for s in entry["source"])


@pytest.mark.parametrize("key,expected", [("h100-sxm", 295.4), ("h200", 206.1)])
def test_c_over_bw_fp8_matches_reference(key, expected):
    assert float(catalogs.hardware(key, precision="fp8").c_over_bw) == pytest.approx(
        expected, abs=0.05
    )


@pytest.mark.parametrize("key", HARDWARE_KEYS)
def test_c_over_bw_matches_reference_derived(key):
    entry = catalogs.hardware_entry(key)
    for precision, expected in (entry.get("derived_c_over_bw") or {}).items():
        if precision in entry["peak_tflops_dense"] and entry["peak_tflops_dense"][precision]:
            hw = catalogs.hardware(key, precision=precision)
            assert float(hw.c_over_bw) == pytest.approx(expected, rel=2e-3, abs=0.1)


def test_hardware_units():
    hw = catalogs.hardware("h200")
    assert isinstance(hw, Hardware)
    assert hw.bw == 4.8e12
    assert hw.capacity == 141e9
    assert float(hw.flops) == pytest.approx(989e12)
    assert float(hw.price_per_hour) == pytest.approx(1.74)  # tco-neocloud, prices.yaml
    assert hw.chips == 1.0


def test_leaves_are_floats_and_differentiable():
    hw = catalogs.hardware("hgx-h200-8", precision="fp8")
    m = catalogs.model("deepseek-v3", weights="native")
    for leaf in jax.tree.leaves(hw) + jax.tree.leaves(m):
        assert isinstance(leaf, float), leaf
    grad = jax.grad(lambda h: h.replica_macs / h.replica_bw)(hw)
    assert float(grad.c_over_bw) == pytest.approx(1.0)


@pytest.mark.parametrize("alias,key", [
    ("H100", "h100-sxm"), ("h100-SXM", "h100-sxm"), ("Ironwood", "tpu-ironwood"),
    ("tpu7x", "tpu-ironwood"), ("Gaudi-3", "gaudi3"), ("GB200-NVL72", "gb200-nvl72"),
])
def test_hardware_aliases_case_insensitive(alias, key):
    assert catalogs.resolve_hardware(alias) == key


@pytest.mark.parametrize("alias,key", [
    ("DeepSeek-R1", "deepseek-v3"), ("dsv3", "deepseek-v3"), ("Kimi-K2-Instruct", "kimi-k2"),
    ("LLAMA-3.1-70B", "llama-3.1-70b"), ("gpt-oss-120b", "gpt-oss-120b"),
])
def test_model_aliases_case_insensitive(alias, key):
    assert catalogs.resolve_model(alias) == key


def test_unknown_model_suggests():
    with pytest.raises(catalogs.UnknownNameError, match="did you mean 'deepseek-v3'") as info:
        catalogs.model("deepseek-v4")
    assert isinstance(info.value, ValueError)
    assert "model" in str(info.value) and "llama-3.1-8b" in str(info.value)


def test_unknown_hardware_suggests():
    with pytest.raises(catalogs.UnknownNameError, match="did you mean") as info:
        catalogs.hardware("H2OO")
    message = str(info.value)
    assert "'h200'" in message and "hardware" in message and "'H2OO'" in message


@pytest.mark.parametrize("key,precision", [("a100", "fp8"), ("h200", "fp4"), ("tpu-v4", "fp8")])
def test_missing_precision_raises(key, precision):
    with pytest.raises(ValueError, match=f"{key}.*no {precision}.*bf16"):
        catalogs.hardware(key, precision=precision)


def test_fp4_where_present():
    assert float(catalogs.hardware("b200", precision="fp4").flops) == pytest.approx(9000e12)


@pytest.mark.parametrize("preset,chip_chips", list(PRESETS.items()))
def test_presets_scale_chips(preset, chip_chips):
    chip, chips = chip_chips
    hw, one = catalogs.hardware(preset), catalogs.hardware(chip)
    assert hw.chips == chips
    assert hw.bw == one.bw and hw.capacity == one.capacity and hw.price == one.price
    assert float(hw.replica_bw) == pytest.approx(chips * one.bw)
    assert catalogs.hardware(preset, chips=4).chips == 4.0


def test_price_override_and_missing_price():
    assert float(catalogs.hardware("h100", price_per_hour=2.0).price_per_hour) == pytest.approx(2.0)
    gaudi = catalogs.hardware_entry("gaudi3")
    assert gaudi["price_known"] is False
    assert math.isnan(float(catalogs.hardware("gaudi3").price))  # never a silent 0
    p = catalogs.price("gaudi3")
    assert p.basis == catalogs.NO_PRICE and not p.known and "gaudi3" in p.source
    assert catalogs.hardware_entry("h100")["price_known"] is True


_REF = [p / "shared" / "reference" / "prices.yaml" for p in Path(__file__).resolve().parents[1:4]]
_REF = [p for p in _REF if p.exists()]
REF_PRICES = yaml.safe_load(_REF[0].read_text()) if _REF else None  # ../shared of the checkout


@pytest.mark.skipif(REF_PRICES is None, reason="reference prices.yaml not on this machine")
def test_catalog_carries_reference_prices():
    names = {"h100": "h100-sxm"}
    fields = {"tco-hyperscaler": "hyperscaler", "tco-neocloud": "neocloud", "rental-3yr": "rental_3yr"}
    for chip, row in REF_PRICES["tco"].items():
        key = names.get(chip, chip)
        for basis, field in fields.items():
            p = catalogs.price(key, basis)
            assert p.usd_per_hour == pytest.approx(row[field]) and p.basis == basis
            assert p.placeholder is bool(row.get("placeholder", False))
        assert catalogs.power_kw(key)[0] == pytest.approx(row["power_kw"])
    for chip, row in REF_PRICES["market"].items():
        assert catalogs.price(chip, "market-low").usd_per_hour == pytest.approx(row["low"])
        assert catalogs.price(chip, "market-high").usd_per_hour == pytest.approx(row["high"])
        assert catalogs.price(chip).known  # the default basis falls back to market-low


def test_price_specs():
    assert catalogs.price("h200", "tco-hyperscaler").usd_per_hour == pytest.approx(1.41)
    assert catalogs.price("b300", "tco-neocloud").placeholder is True
    fallback = catalogs.price("tpu-v5p", "tco-neocloud,market-low")
    assert fallback.basis == "market-low" and fallback.usd_per_hour == pytest.approx(4.2)
    assert math.isnan(catalogs.price("tpu-v5p", "tco-neocloud").usd_per_hour)
    assert catalogs.price("gaudi3", "8$/h").usd_per_hour == 8.0
    assert catalogs.price("gaudi3", 3).basis == "custom"
    assert catalogs.price("gb200-nvl72").usd_per_hour == pytest.approx(2.75)  # preset: per chip
    for bad in ("tco", "cheap,tco-neocloud", "8 GB"):
        with pytest.raises(ValueError, match="expected"):
            catalogs.parse_price(bad)


def test_prices_record_their_source():
    for key in HARDWARE_KEYS:
        for basis, item in (catalogs.hardware_entry(key).get("price_bases") or {}).items():
            assert basis in catalogs.PRICE_BASES and item["usd_per_hour"] > 0 and item["source"]


def test_model_native_and_kv_precision():
    m = catalogs.model("DeepSeek-V3", weights="native", kv="fp8")
    assert isinstance(m, Model)
    assert m.bytes_per_weight == 1.0 and m.kv_bytes_per_token == 35136.0
    assert catalogs.model("gemma-3-27b").local_window == 1024.0


def test_tables():
    hw_rows, m_rows = catalogs.hardware_table(), catalogs.model_table()
    assert [r["name"] for r in hw_rows] == catalogs.hardware_names()
    assert [r["name"] for r in m_rows] == catalogs.model_names()
    assert all(r["source"] for r in hw_rows + m_rows)
    row = next(r for r in m_rows if r["name"] == "llama-3.1-70b")
    assert row["kv_bytes_per_token_bf16"] == 327680


@pytest.mark.parametrize(("name", "key"), [
    ("h100_sxm", "h100-sxm"), ("H200_SXM", "h200"), ("b200_sxm", "b200"),
    ("deepseek-ai/DeepSeek-R1", "deepseek-v3"), ("nvidia/DeepSeek-R1-NVFP4", "deepseek-v3"),
    ("meta-llama/Llama-3.1-70B", "llama-3.1-70b"), ("Qwen/Qwen3-32B", "qwen3-32b"),
    ("Qwen/Qwen3-235B-A22B-FP8", "qwen3-235b-a22b"), ("openai/gpt-oss-120b", "gpt-oss-120b"),
    ("nvidia/Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b"),
])
def test_names_as_engines_spell_them(name, key):
    """The measurement table's system and model_path spellings resolve as aliases."""
    resolve = catalogs.resolve_hardware if "_sxm" in name.lower() else catalogs.resolve_model
    assert resolve(name) == key


@pytest.mark.parametrize(("name", "key"), [
    ("a100_sxm", "a100"), ("h800_sxm", "h800"), ("h20_sxm", "h20"), ("b300_sxm", "b300"),
    ("gb200", "gb200"), ("GB200_SXM", "gb200"), ("gb300", "gb300"), ("l40s", "l40s"),
    ("h100_pcie", "h100-pcie"),
])
def test_every_system_aiconfigurator_names_resolves(name, key):
    """aiconfigurator's system names (sdk/common.py SupportedSystems, its systems/*.yaml) — the
    chips other tables of this format measure: ``_`` reads as ``-`` (:func:`catalogs.spelling`)."""
    assert catalogs.resolve_hardware(name) == key


@pytest.mark.parametrize(("name", "key"), [
    ("meta-llama/Meta-Llama-3.1-8B", "llama-3.1-8b"), ("meta-llama/Meta-Llama-3.1-405B", "llama-3.1-405b"),
    ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.1-70b"), ("Qwen/Qwen3-8B", "qwen3-8b"),
    ("Qwen/Qwen3-30B-A3B-FP8", "qwen3-30b-a3b"), ("nvidia/Qwen3-235B-A22B-NVFP4", "qwen3-235b-a22b"),
    ("Qwen/Qwen3-Coder-480B-A35B-Instruct", "qwen3-coder-480b-a35b"),
    ("moonshotai/Kimi-K2.5", "kimi-k2.5"), ("nvidia/Kimi-K2.5-NVFP4", "kimi-k2.5"),
    ("MiniMaxAI/MiniMax-M2.5", "minimax-m2.5"), ("zai-org/GLM-5", "glm-5"),
    ("deepseek-ai/DeepSeek-R1-0528", "deepseek-v3"), ("nvidia/DeepSeek-V3.1-NVFP4", "deepseek-v3"),
    ("openai/gpt-oss-20b", "gpt-oss-20b"), ("Qwen/Qwen3.5-397B-A17B", "qwen3.5-397b-a17b"),
    ("deepseek-ai/DeepSeek-V3.2", "deepseek-v3.2"),
])
def test_aiconfigurator_default_models_resolve(name, key):
    """HuggingFace ids of aiconfigurator's default models (sdk/common.py DefaultHFModels) whose
    architecture the catalog holds resolve to it."""
    assert catalogs.resolve_model(name) == key


@pytest.mark.parametrize(("name", "key"), [
    ("/raid/models/Llama-3.1-70B-Instruct-FP8", "llama-3.1-70b"), ("RedHatAI/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("/ckpt/DeepSeek-R1/", "deepseek-v3"), ("someorg/gpt-oss-120b", "gpt-oss-120b"),
])
def test_a_model_path_resolves_by_its_last_component(name, key):
    """A local checkpoint path or another organization's copy resolves by its last component
    when exactly one catalog model has an alias ending in it."""
    assert catalogs.resolve_model(name) == key


def test_a_model_path_with_an_unknown_last_component_is_unknown():
    with pytest.raises(catalogs.UnknownNameError, match="org/Unknown-1B"):
        catalogs.resolve_model("org/Unknown-1B")
