"""Models from Hugging Face config.json files (rooflax.sweeps.hf), user catalogs, and their wiring.

The done-when of issue 10 item 5: from real config.json files (tests/data/hf, sources in its
README) N_total, N_active and KV bytes/token equal the catalog entries' for a dense GQA, an
MoE + MLA and a hybrid linear-attention model. The catalog entries were written from their own
sources (see their ``source:``), not from these files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rooflax.core.arch import Architecture, model_from_architecture
from rooflax.results.cli import app
from rooflax.sweeps import catalogs, hf
from rooflax.sweeps import config as C

DATA = Path(__file__).parent / "data" / "hf"
CASES = [("llama-3.1-8b", "llama-3.1-8b"), ("deepseek-v3", "deepseek-v3"),
         ("qwen3.5-397b-a17b", "qwen3.5-397b-a17b")]


@pytest.fixture(autouse=True)
def _clean_catalog(monkeypatch):
    """Models registered or user catalogs chosen in a test do not leak into others."""
    monkeypatch.setattr(catalogs, "_added_models", {})
    monkeypatch.setattr(catalogs, "_user_catalog", [None])
    monkeypatch.delenv(catalogs.USER_CATALOG_ENV, raising=False)


@pytest.mark.parametrize("folder,key", CASES)
def test_config_json_counts_equal_the_catalog(folder, key):
    mine = hf.architecture(DATA / folder / "config.json")
    ref = catalogs.architecture(key)
    assert mine.n_total() == ref.n_total()
    assert mine.n_active() == ref.n_active()
    assert mine.n_active(include_input_embedding=False) == ref.n_active(include_input_embedding=False)
    for kv in ("bf16", "fp8"):
        assert mine.kv_bytes_per_token(kv) == ref.kv_bytes_per_token(kv)
        assert mine.kv_bytes_per_token_local(kv) == ref.kv_bytes_per_token_local(kv)
        assert mine.state_bytes_per_seq(kv) == ref.state_bytes_per_seq(kv)
    assert mine.bytes_per_weight("native") == ref.bytes_per_weight("native")
    assert model_from_architecture(mine, "fp8", "fp8") == model_from_architecture(ref, "fp8", "fp8")


def test_the_three_architectures_are_what_they_claim():
    """Dense GQA, MoE + MLA, hybrid linear attention (so the test above covers each kind)."""
    llama, dsv3, qwen = (hf.architecture(DATA / f / "config.json") for f, _ in CASES)
    assert not llama.is_moe and llama.num_kv_heads < llama.num_heads
    assert dsv3.is_moe and dsv3.is_mla
    assert qwen.is_moe and qwen.linear_layers == 45 and qwen.global_layers == 15
    assert qwen.state_bytes_per_seq() > 0 and llama.state_bytes_per_seq() == 0


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "config.json"
    p.write_text(json.dumps(data))
    return p


def _llama() -> dict:
    return json.loads((DATA / "llama-3.1-8b" / "config.json").read_text())


@pytest.mark.parametrize("change,match", [
    ({"hidden_size": None}, "field 'hidden_size': expected a non-negative integer, found missing"),
    ({"num_attention_heads": "32"}, "field 'num_attention_heads': expected a non-negative integer, found '32'"),
    ({"model_type": "falcon"}, "field 'model_type': expected one of"),
    ({"tie_word_embeddings": "no"}, "field 'tie_word_embeddings': expected true or false"),
    ({"layer_types": ["full_attention"] * 3}, "field 'layer_types': expected 32 entries"),
])
def test_bad_fields_name_the_file_and_field(tmp_path, change, match):
    data = {**_llama(), **change}
    data = {k: v for k, v in data.items() if v is not None}
    path = _write(tmp_path, data)
    with pytest.raises(hf.HFConfigError, match=match) as e:
        hf.architecture(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(hf.HFConfigError, match="cannot read"):
        hf.architecture(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(hf.HFConfigError, match="expected JSON"):
        hf.architecture(bad)


def test_nested_text_config_and_sliding_layer_types(tmp_path):
    """A multimodal wrapper's text_config is read; sliding_attention entries are local layers."""
    text = {**_llama(), "layer_types": ["sliding_attention", "full_attention"] * 16,
            "sliding_window": 128}
    arch = hf.architecture(_write(tmp_path, {"model_type": "llama", "text_config": text}))
    assert (arch.local_layers, arch.sliding_window, arch.global_layers) == (16, 128, 16)


def test_cli_query_with_a_config_json_matches_the_catalog_model():
    path = str(DATA / "qwen3.5-397b-a17b" / "config.json")
    rows = []
    for args in (["-m", path], ["--hf-config", path], ["-m", "qwen3.5-397b-a17b"]):
        r = CliRunner().invoke(app, ["query", "b_max", "kv_read_bytes", "-H", "h200", "-n", "8",
                                     "-L", "32k", "--json", *args])
        assert r.exit_code == 0, r.output
        rows.append({k: v for k, v in json.loads(r.output)["rows"][0].items() if k != "model"})
    assert rows[0] == rows[1] == rows[2]
    # 15 full-attention layers × 2 KV heads × 256 × (K, V) × 2 B per token, plus the state
    assert rows[0]["kv_read_bytes"] == 15 * 2 * 256 * 2 * 2 * 32768 + 97_689_600


def test_cli_bad_config_json_is_one_line_exit_2(tmp_path):
    path = _write(tmp_path, {"model_type": "llama"})
    r = CliRunner().invoke(app, ["query", "b_star", "-m", str(path)])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "num_attention_heads" in r.output


def test_sweep_config_hf_config_relative_to_the_config(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text((DATA / "deepseek-v3" / "config.json").read_text())
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "axes": {"hardware": ["h200"], "model": {"hf_config": "m/config.json"},
                 "batch": [1, 64], "context": [1024]},
        "store": str(tmp_path / "out.zarr")}))
    cfg = C.load(cfg_path)
    (item,) = cfg.axes.model
    assert item.name == "m"
    assert Architecture(**item.architecture).n_total() == catalogs.architecture("deepseek-v3").n_total()


def test_sweep_config_bad_hf_config_names_the_field(tmp_path):
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "axes": {"hardware": ["h200"], "model": [{"hf_config": "missing.json"}],
                 "batch": [1], "context": [1024]}}))
    with pytest.raises(C.ConfigError, match="missing.json: cannot read the config file"):
        C.load(cfg_path)


def _user_catalog(tmp_path: Path) -> Path:
    arch = dict(catalogs.model_entry("llama-3.1-8b")["architecture"], num_layers=16)
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"models": {"half-llama": {"aliases": ["hl"], "architecture": arch,
                                                           "source": ["my notes"]}}}))
    return p


def test_user_catalog_merges_with_the_packaged_one(tmp_path, monkeypatch):
    monkeypatch.setenv(catalogs.USER_CATALOG_ENV, str(_user_catalog(tmp_path)))
    assert catalogs.resolve_model("HL") == "half-llama"
    assert "deepseek-v3" in catalogs.model_names()
    full, half = catalogs.architecture("llama-3.1-8b"), catalogs.architecture("half-llama")
    per_layer = (full.n_total() - half.n_total()) / 16
    # q, o 4096² each + k, v 4096·1024 each; SwiGLU 3·4096·14336; two RMSNorms of 4096
    assert per_layer == 2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert catalogs.model("hl").kv_bytes_per_token == full.kv_bytes_per_token() / 2


def test_cli_catalog_option(tmp_path):
    r = CliRunner().invoke(app, ["query", "b_max", "-m", "hl", "--catalog",
                                 str(_user_catalog(tmp_path)), "--json"])
    assert r.exit_code == 0, r.output


def test_bad_user_catalog_is_one_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"models": {"x": {"architecture": {"hidden_size": 1,
                                                                   "wings": 2}}}}))
    with pytest.raises(catalogs.UserCatalogError, match=r"bad.yaml: field 'models.x.architecture'"):
        catalogs.use_user_catalog(p)
    r = CliRunner().invoke(app, ["query", "b_max", "--catalog", str(p)])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0


# Configs written with each family's Hugging Face field names (values as in the released files):
# the mapping of names to Architecture fields must give the catalog entry's counts.
FAMILY_CONFIGS = {
    "gpt-oss-120b": {
        "model_type": "gpt_oss", "hidden_size": 2880, "num_hidden_layers": 36,
        "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
        "intermediate_size": 2880, "vocab_size": 201088, "num_local_experts": 128,
        "num_experts_per_tok": 4, "experts_per_token": 4, "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention"] * 18, "attention_bias": True,
        "tie_word_embeddings": False, "quantization_config": {"quant_method": "mxfp4"}},
    "mixtral-8x7b": {
        "model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
        "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2,
        "sliding_window": None, "tie_word_embeddings": False},
    "qwen3-30b-a3b": {
        "model_type": "qwen3_moe", "hidden_size": 2048, "num_hidden_layers": 48,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
        "intermediate_size": 6144, "moe_intermediate_size": 768, "vocab_size": 151936,
        "num_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1,
        "mlp_only_layers": [], "use_sliding_window": False, "sliding_window": None,
        "tie_word_embeddings": False},
    "minimax-m2.5": {
        "model_type": "minimax_m2", "hidden_size": 3072, "num_hidden_layers": 62,
        "num_attention_heads": 48, "num_key_value_heads": 8, "head_dim": 128,
        "intermediate_size": 1536, "vocab_size": 200064, "num_local_experts": 256,
        "num_experts_per_tok": 8, "use_routing_bias": True, "use_qk_norm": True,
        "qk_norm_type": "per_layer", "tie_word_embeddings": False,
        "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}},
    "glm-5": {
        "model_type": "glm_moe_dsa", "hidden_size": 6144, "num_hidden_layers": 78,
        "num_attention_heads": 64, "num_key_value_heads": 64, "intermediate_size": 12288,
        "moe_intermediate_size": 2048, "vocab_size": 154880, "n_routed_experts": 256,
        "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
        "q_lora_rank": 2048, "kv_lora_rank": 512, "qk_nope_head_dim": 192,
        "qk_rope_head_dim": 64, "v_head_dim": 256, "topk_method": "noaux_tc",
        "index_topk": 2048, "index_n_heads": 32, "index_head_dim": 128,
        "tie_word_embeddings": False},
}


@pytest.mark.parametrize("key", sorted(FAMILY_CONFIGS))
def test_family_field_names_map_to_the_catalog_architecture(tmp_path, key):
    mine = hf.architecture(_write(tmp_path, FAMILY_CONFIGS[key]))
    ref = catalogs.architecture(key)
    assert (mine.n_total(), mine.n_active()) == (ref.n_total(), ref.n_active())
    assert mine.kv_bytes_per_token() == ref.kv_bytes_per_token()
    assert mine.kv_bytes_per_token_local() == ref.kv_bytes_per_token_local()
    assert (mine.index_topk, mine.index_bytes_per_token()) == (ref.index_topk, ref.index_bytes_per_token())
    assert mine.bytes_per_weight("native") == ref.bytes_per_weight("native")
