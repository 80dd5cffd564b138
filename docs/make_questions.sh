#!/bin/bash
# Prints the README's "Questions the seeds ask" section: every command below is run and its
# output pasted (regenerate: bash docs/make_questions.sh, then replace that section of README.md).
export COLUMNS=110
R=".venv/bin/rooflax"
run() { echo '```console'; echo "\$ rooflax $*"; $R "$@" 2>&1 | sed 's/[[:space:]]*$//'; echo '```'; echo; }
cat <<'MD'
## Questions the seeds ask

Every question at the end of seeds 000 ("Writing Inference as Equations") and 001 ("How
inference actually works") answered with a rooflax command and its real output (generated
by running the commands; catalog numbers: `rooflax catalog hardware NAME` shows their
sources; prices on the default basis, SemiAnalysis neocloud TCO: $1.74 per H200-hour —
`--price` picks another). `hgx-h200-8` is a node of 8 H200 (the smallest H200 replica that holds
DeepSeek-V3); `-p fp8` computes and stores weights in fp8; contexts are tokens (`32k` = 32 768).

Reading the outputs: `b_x` is the crossover batch (T_compute = T_memory), `b_x_kv_free`
the seeds' "C/BW × N_total·w/N_active", `b_max` the batch that fills HBM, `b_star` =
min(b_x, b_max, b_slo) with the `binding` constraint named, `l_bal` the context at which
the KV slope equals the compute slope (beyond it there is no crossover: `b_x = inf`).

### `rooflax sensitivity --json` keys (schema `rooflax.sensitivity/1`)

`schema`, `source` (`catalog` or `cube:PATH`), `inputs` (hardware, model, chips,
precision, weights, kv_precision, price_per_hour, context, slo, set, scale — for a cube,
the selected coordinates), `parameters` (every knob in SI units: bw B/s, c_over_bw MAC/B,
capacity B, price $/s per chip, chips, n_total, sparsity, kv_bytes_per_token B/token,
bytes_per_weight B, context tokens, batch, slo s), `binding`
(`crossover`/`capacity`/`slo`/`infeasible`), `reason` (`ok` or why partials are NaN),
`values` (b_star, cost_at_b_star $/token, cost_per_mtok_at_b_star, latency_at_b_star s,
throughput_at_b_star tokens/s), `units`, `partial` {output: {knob: ∂y/∂x}}, `elasticity`
{output: {knob: ∂ln y/∂ln x}}, `sentences` {output: {knob: "+1 % bandwidth → −1 % cost per
token"}}. Non-finite numbers are `null`.

### Seed 000

#### "If a company claims a new algorithm makes inference 10× faster, what should you ask? Did they change N_active, b, or C/BW?"

Ask which knob moved, and how much each knob *can* move speed (latency per token at B*)
and cost. The elasticities say it in one command:

MD
run sensitivity -H hgx-h200-8 -m deepseek-v3 -L 8k -p fp8 -k bw -k c_over_bw -k sparsity -k kv_bytes_per_token -k n_total -k bytes_per_weight
cat <<'MD'
At 8K context DeepSeek-V3 on 8 H200 is capacity-bound: a step reads the whole HBM, so latency
per token moves only with bandwidth (−1 % per +1 % BW) — not with C/BW, sparsity, or the
bytes of weights and KV — while cost per token moves with the bytes (+1.47 % per +1 % of
weight bytes, +1 % per +1 % of KV bytes) because they decide how many users fit. A
"10× faster" claim that does not raise BW per replica is a smaller batch (faster per user,
dearer per token — see seed 001's first question) or not the same service.

#### "What's the optimal batch for a dense model (N_total = N_active)? Why do dense models suffer more in long-context scenarios?"

MD
run query b_x_kv_free b_x b_max b_star binding cost_per_mtok_at_b_star l_bal -H hgx-h200-8 -m llama-3.1-70b,deepseek-v3 -L 1k,32k,128k -p fp8
cat <<'MD'
A dense model's KV-free sweet spot is just C/BW × w (≈ 206 at fp8 on H200) — 18× smaller
than DeepSeek-V3's. Its compute slope N_active/C is steep, but it reaches the balanced
context `l_bal` (where the KV slope L·b/BW equals the compute slope) sooner: 1 044 tokens
for Llama-3.1-70B (GQA) against 2 592 for DeepSeek-V3 (MLA, 70 KB/token).
Past `l_bal` there is no crossover at all, the batch is capped by HBM (`capacity`), and cost
per token grows linearly with context: $0.036 → $4.61 per Mtok from 1K to 128K for the dense
model.

#### "If a future GPU 10×s BW while keeping C fixed, what does C/BW become? How does the sweet spot move? Which model class benefits the most?"

Today (H200 × 8, fp8, 8K context):

MD
run query b_x_kv_free b_x b_star binding cost_per_mtok_at_b_star latency_at_b_star -H h200 -n 8 -p fp8 -L 8k -m llama-3.1-70b,deepseek-v3,qwen3-235b-a22b,kimi-k2
echo "With 10× bandwidth at the same C (\`--scale bw=10 --scale c_over_bw=0.1\`: C/BW drops from 206 to 20.6):"
echo
run query b_x_kv_free b_x b_star binding cost_per_mtok_at_b_star latency_at_b_star -H h200 -n 8 -p fp8 -L 8k -m llama-3.1-70b,deepseek-v3,qwen3-235b-a22b,kimi-k2 --scale bw=10 --scale c_over_bw=0.1
cat <<'MD'
C/BW falls 10× (206 → 20.6) and so does the KV-free sweet spot (C/BW × N_total·w/N_active):
the crossover comes back within reach of the memory that exists (Llama 95.6, DeepSeek-V3 539).
Latency per token falls ~10–35×. Cost per token falls 10× for the models that stay
capacity-bound (Qwen3-235B, Kimi-K2: the big-KV / big-weight ones on an 8-chip node) and a
little less for those that reach the crossover and hit the compute floor N_active/C (Llama
8.4×, DeepSeek-V3 7.8×). Relative to compute, the winners are the models that were furthest
from their sweet spot: large total size and large KV per token.

#### "If a service has only a few users but every user holds super-long conversations, where does its batch get stuck? What happens to its margin?"

MD
run query cost_per_mtok kv_share regime tokens_per_second_per_user -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 128k -B 1,4,16,49
run query b_star binding cost_per_mtok_at_b_star cost_ratio_b1 -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 8k,128k
cat <<'MD'
At 128K tokens there is no crossover any more (past `l_bal` = 2 592 tokens the KV slope
exceeds the compute slope) and HBM caps the batch at ~50 sequences (`capacity`); with a few
users the batch is stuck below even that, where the weight reads are shared by almost
nobody. Cost per Mtok at batch 4 is $17.8 — 7.8× the 128K optimum ($2.29) and 125× the 8K
optimum ($0.14) — and even the best 128K batch costs 16× the 8K one, while the KV share of
traffic climbs to 40 %. At a flat token price the margin is gone: the physics behind
long-context price tiers.

### Seed 001

#### "If a company claims its inference service is 10× faster than others, what tactics might it be using? Which are real, and which just swap batching for dedicated capacity?"

MD
run query tokens_per_second_per_user cost_per_mtok regime -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 8k -B 1,16,64,256,794
run query latency_floor -H hgx-h200-8,gb200-nvl72 -m deepseek-v3 -p fp8
cat <<'MD'
Shrinking the batch buys at most the latency floor N_total·w/BW (17.5 ms/token here): from
B* (794) down to B = 1 speed per user rises only ~1.7× while cost per token rises 473×
(`cost_ratio_b1` in the previous answer) — that is "dedicated capacity", not a faster method.
Real speed-ups lower the floor: more bandwidth per replica (a GB200 NVL72 rack: 15× lower),
fewer bytes per weight (fp4), fewer KV bytes per token (MLA, fp8 KV), or more tokens per step
(speculative decoding). The cost-vs-speed
frontier of a saved cube: `rooflax plot CUBE frontier -o frontier.html`.

#### "Why does an MoE (sparse-expert) model actually push the optimal batch larger at inference time? Hint: inverse sparsity."

MD
run query b_x_kv_free b_x -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 1k
run query b_x_kv_free b_x -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 1k --set sparsity=1
run sensitivity -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 1k -k sparsity -k c_over_bw -k bw
cat <<'MD'
B_x = C/BW × N_total·w/N_active: with N_total held, making the model sparse (N_total/N_active
= 17.9) divides the compute per token by 17.9 while every weight still has to be read, so the
batch that balances compute and memory grows with inverse sparsity — 6 089 instead of 211 for
a dense model of the same size. The elasticity of B* to sparsity is +1.65, above the KV-free
+1, because the KV slope eats part of the (smaller) compute slope.

#### "If HBM bandwidth grows 10× in the future, what happens to LLM API prices? Which cost component will dominate the rewrite?"

MD
run query cost_per_mtok_at_b_star cost_floor binding b_star -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 8k,128k
run query cost_per_mtok_at_b_star cost_floor binding b_star -H hgx-h200-8 -m deepseek-v3 -p fp8 -L 8k,128k --scale bw=10
cat <<'MD'
(`--scale bw=10` alone keeps C/BW, so compute grows with bandwidth too; add
`--scale c_over_bw=0.1` for 10× bandwidth at the same compute, as in seed 000's third
question.) Prices at B* fall 10×, in proportion to bandwidth, while B* stays where HBM
capacity puts it (elasticity of cost to `bw` is −1 in every `rooflax sensitivity` above).
What the rewrite leaves dominant is capacity: how many users' KV fits next to the weights
(`b_max`) sets B*, so HBM size and KV bytes per token (and, at 10× BW with the same C, the
compute floor N_active/C) decide the price, not the weight reads.
MD
