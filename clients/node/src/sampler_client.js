'use strict';
// Client of samplerd (sampler.v1.Sampler): one row or a batch of rows of
// logits (and attention scores) in, the token, mode, signals, parameters and
// the sequence's new state out.
const {EntroserveError} = require('./errors');
const {connect, unary, shortEnum, seedField, specField, rejectUnknown} = require('./channel');
const {toTensor} = require('./tensor');

const ROW_OPTIONS = ['logits', 'attention', 'spec', 'sampler', 'state', 'seed', 'step',
                     'sequenceId', 'specialTokens', 'appendedTokens', 'allowedTokens', 'dtype'];

// The tokens a row of `vocabSize` logits may choose (an array of ids) as a
// sampler.v1.AllowedTokens object, in whichever form is smaller on the wire:
// the ids (ascending, repeats dropped) or a bitmask of ceil(V / 8) bytes
// (bit i % 8 of byte i / 8 allows token i).
function allowedTokensField(ids, vocabSize, where) {
  if (!ids || typeof ids[Symbol.iterator] !== 'function') {
    throw new TypeError(`${where} must be an array of token ids`);
  }
  const unique = [...new Set(Array.from(ids, Number))].sort((a, b) => a - b);
  for (const id of unique) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new TypeError(`${where} has token ${id}, outside the vocabulary [0, ${vocabSize})`);
    }
  }
  const varintBytes = (id) => Math.max(1, Math.ceil(Math.log2(id + 1) / 7));
  const idBytes = unique.reduce((sum, id) => sum + varintBytes(id), 0);
  const maskBytes = Math.ceil(vocabSize / 8);
  if (idBytes < maskBytes) return {ids: {ids: unique}};
  const bitmask = Buffer.alloc(maskBytes);
  for (const id of unique) bitmask[id >> 3] |= 1 << (id & 7);
  return {bitmask};
}

// A caller's row as a sampler.v1.SampleRow object.
//   logits        [V] numbers (Float32Array, array) or a tensor (see tensor.js)
//   attention     optional [H, L]: {heads, keys?, data}, rows of numbers, or a tensor
//   spec          a sampler name or a SamplerSpec object (`sampler` is the same)
//   state         the `state` of the previous step's result (unset at step 0)
//   seed          string, bigint or safe-integer number; picked by the server when unset
//   step          default: state.nextStep, else 0
//   sequenceId, specialTokens {clarifyingQuestion, pause, eos}, appendedTokens [ids]
//   allowedTokens [ids] the sampler may choose (unset: every token)
//   dtype         wire type of the numbers: float32 (default), float16, bfloat16
function toRow(protos, row, where) {
  if (row === null || typeof row !== 'object' || Array.isArray(row) || ArrayBuffer.isView(row)) {
    throw new TypeError(`${where} must be an object with logits`);
  }
  rejectUnknown(row, ROW_OPTIONS, where);
  if (row.logits === undefined) throw new TypeError(`${where}.logits is required`);
  if (row.spec !== undefined && row.sampler !== undefined) {
    throw new TypeError(`${where}: give spec or sampler, not both`);
  }
  const state = protos.checked('sampler.v1.SamplerState', row.state, `${where}.state`);
  const out = {
    sequenceId: row.sequenceId ?? '',
    step: row.step ?? (state && state.nextStep !== undefined ? Number(state.nextStep) : 0),
    spec: specField(protos, row.spec ?? row.sampler, `${where}.spec`),
    state,
    logits: toTensor(row.logits, row.dtype, `${where}.logits`),
    attention: toTensor(row.attention, row.dtype, `${where}.attention`),
    specialTokens: protos.checked('sampler.v1.SpecialTokens', row.specialTokens,
                                  `${where}.specialTokens`),
    appendedTokens: row.appendedTokens ? Array.from(row.appendedTokens) : [],
  };
  if (row.allowedTokens !== undefined) {
    out.allowedTokens = allowedTokensField(row.allowedTokens, Number(out.logits.shape[0] ?? 0),
                                           `${where}.allowedTokens`);
  }
  const seed = seedField(row.seed, `${where}.seed`);
  if (seed !== undefined) out.seed = seed;
  return out;
}

// A decoded SampleResult as the client's result:
//   {sequenceId, step, token, mode ('flowing', 'greedy', ...), inserted,
//    logprob, signals, params, state, seed (string)}
// or, for a row the server rejected, {sequenceId, step, error: EntroserveError}.
function fromResult(protos, result, index) {
  const r = protos.plain('sampler.v1.SampleResult', result);
  const sequenceId = r.sequenceId ?? '';
  const step = r.step ?? 0;
  if (r.error) {
    return {sequenceId, step, error: new EntroserveError(r.error.code ?? 0, r.error.message ?? '',
                                                         {sequenceId, step, row: index})};
  }
  return {
    sequenceId,
    step,
    token: r.tokenId,
    mode: shortEnum('MODE_', r.mode),
    inserted: r.inserted,
    logprob: r.logprob,
    signals: r.signals ?? {},
    params: r.params ?? {},
    state: r.state ?? {},
    seed: r.seed,
  };
}

// The answer to sample(): one row in -> its result (a row error thrown);
// an array in -> an array of results (row errors in `error`).
function answer(protos, response, single, count) {
  const results = (response.results || []).map((r, i) => fromResult(protos, r, i));
  if (results.length !== count) {
    throw new EntroserveError(13, `samplerd answered ${results.length} results for ${count} rows`);
  }
  if (!single) return results;
  if (results[0].error) throw results[0].error;
  return results[0];
}

function toRequest(protos, rowOrRows) {
  const single = !Array.isArray(rowOrRows);
  const rows = single ? [rowOrRows] : rowOrRows;
  return {
    single,
    count: rows.length,
    request: {rows: rows.map((row, i) => toRow(protos, row, single ? 'row' : `rows[${i}]`))},
  };
}

// One sequence: keeps its spec, seed, state and step, and sends them with
// each step's logits. `sampler` is a SamplerClient or a SampleStream.
class SamplerSession {
  constructor(sampler, {spec, sampler: name, seed, sequenceId = '', specialTokens, dtype} = {}) {
    this.sampler = sampler;
    this.spec = spec ?? name;
    this.seed = seed === undefined ? undefined : seedField(seed);
    this.sequenceId = sequenceId;
    this.specialTokens = specialTokens;
    this.dtype = dtype;
    this.state = undefined;
    this.step = 0;
  }

  // {logits, attention?, appendedTokens?} -> the step's result. The next
  // step sends the returned state; the seed the server picked at step 0 is
  // kept for every later step. A failed step leaves the session as it was.
  async sample({logits, attention, appendedTokens} = {}) {
    const result = await this.sampler.sample({
      logits, attention, appendedTokens,
      spec: this.spec, seed: this.seed, state: this.state, step: this.step,
      sequenceId: this.sequenceId, specialTokens: this.specialTokens, dtype: this.dtype,
    });
    this.state = result.state;
    this.step = result.state.nextStep ?? this.step + 1;
    this.seed = result.seed;
    return result;
  }
}

// One bidirectional SampleStream: each sample() sends one message (a row or
// a batch) and resolves with its answer; answers come in order. A broken
// stream rejects every sample() in flight and later ones.
class SampleStream {
  constructor(client) {
    this.protos = client.protos;
    this.call = client.stub.SampleStream();
    this.pending = [];
    this.failure = null;
    this.call.on('data', (response) => {
      const next = this.pending.shift();
      if (!next) return;
      try {
        next.resolve(answer(this.protos, response, next.single, next.count));
      } catch (err) {
        next.reject(err);
      }
    });
    // The first cause stays: grpc-js emits 'end' after 'error' too.
    const fail = (err) => {
      if (!this.failure) this.failure = err;
      for (const p of this.pending.splice(0)) p.reject(this.failure);
    };
    this.call.on('error', (err) => fail(EntroserveError.fromGrpc(err)));
    this.call.on('end', () => fail(new EntroserveError(14, 'samplerd ended the SampleStream')));
    this.ended = false;
  }

  sample(rowOrRows) {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) {
      return Promise.reject(new EntroserveError(9, 'SampleStream: sample() after end()'));
    }
    let request;
    try {
      request = toRequest(this.protos, rowOrRows);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({resolve, reject, single: request.single, count: request.count});
      this.call.write(request.request);
    });
  }

  session(options) {
    return new SamplerSession(this, options);
  }

  // Half-closes the stream; answers in flight still arrive.
  end() {
    this.ended = true;
    this.call.end();
  }

  cancel() {
    this.call.cancel();
  }
}

class SamplerClient {
  // address: 'host:port' of samplerd. options: see channel.js's connect().
  constructor(address = 'localhost:50051', options = {}) {
    Object.assign(this, connect('sampler.v1.Sampler', address, options));
    this.address = address;
  }

  // One row ({logits, attention, spec, state, seed, ...}) -> its result, or
  // an array of rows (one batch, one call) -> an array of results.
  async sample(rowOrRows, {timeoutMs = this.timeoutMs} = {}) {
    const {single, count, request} = toRequest(this.protos, rowOrRows);
    const response = await unary(this.stub, 'Sample', request, timeoutMs);
    return answer(this.protos, response, single, count);
  }

  // The samplers samplerd knows: [{name, description, defaults (a
  // SamplerSpec with every default), usesAttention, stateful}].
  async samplers({timeoutMs = this.timeoutMs} = {}) {
    const response = await unary(this.stub, 'ListSamplers', {}, timeoutMs);
    return (response.samplers || []).map((s) => this.protos.plain('sampler.v1.SamplerInfo', s));
  }

  // A sequence's steps over unary calls (see SamplerSession).
  session(options) {
    return new SamplerSession(this, options);
  }

  // A bidirectional SampleStream (see SampleStream).
  stream() {
    return new SampleStream(this);
  }

  close() {
    this.stub.close();
  }
}

module.exports = {SamplerClient, SamplerSession, SampleStream, allowedTokensField};
