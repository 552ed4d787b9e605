// samplerctl's --json records (protobuf JSON: snake_case, int64 as strings,
// floats printed as the shortest decimal of their float32, zero values left
// out) in the Node client's shape, float32 values exact (Math.fround).
const fround = Math.fround;

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

function floats(object) {
  if (object === undefined) return {};
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [camel(k), fround(v)]));
}

function short(prefix, value) {
  return value.slice(prefix.length).toLowerCase();
}

function signals(s = {}) {
  return {entropy: 0, varentropy: 0, ...floats(s)};
}

// A SampleResult record of `samplerctl sample --json`.
export function sampleResult(r) {
  if (r.error) return {error: {code: r.error.code ?? 0, details: r.error.message ?? ''}};
  const s = r.state ?? {};
  const state = {
    version: s.version ?? 0,
    sampler: s.sampler ?? '',
    nextStep: Number(s.next_step ?? 0),
    recentTokens: s.recent_tokens ?? [],
    alphaWindow: (s.alpha_window ?? []).map(fround),
    lastInserted: s.last_inserted ?? false,
  };
  if (s.mirostat_mu !== undefined) state.mirostatMu = fround(s.mirostat_mu);
  return {
    sequenceId: r.sequence_id ?? '',
    step: Number(r.step ?? 0),
    token: r.token_id ?? 0,
    mode: short('MODE_', r.mode ?? 'MODE_UNSPECIFIED'),
    inserted: r.inserted ?? false,
    logprob: fround(r.logprob ?? 0),
    signals: signals(r.signals),
    params: floats(r.params),
    state,
    seed: r.seed ?? '0',
  };
}

// A GeneratedToken record of `samplerctl generate --json`.
export function generatedToken(t) {
  return {
    id: t.id,
    text: t.text,
    mode: short('MODE_', t.mode),
    inserted: t.inserted,
    index: t.index,
    logprob: fround(t.logprob),
    signals: signals(t.signals),
    params: floats(t.params),
  };
}

// The summary record that ends `samplerctl generate --json`.
export function generateSummary(s) {
  return {
    finishReason: short('FINISH_REASON_', s.finish_reason),
    seed: s.seed ?? '0',
    promptTokens: s.prompt_tokens ?? 0,
    generatedTokens: s.usage?.generated_tokens ?? 0,
  };
}
