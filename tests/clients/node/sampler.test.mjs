// SamplerClient against a real samplerd on loopback: the same rows give
// exactly what samplerctl (the C++ client) gets; bad input is rejected with
// the server's code and message and the server goes on serving.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdtempSync, writeFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {SamplerClient, EntroserveError, encodeValues, allowedTokensField} from
    '../../../clients/node/src/index.js';
import {binary, startSamplerd, samplerctl, example, jsonLines} from './servers.mjs';
import {sampleResult} from './expected.mjs';

const VOCAB = 6144;
const HEADS = 4;
const KEYS = 24;

let server;
let client;
let dir;

before(async () => {
  assert.ok(binary('samplerd'), 'samplerd not built (set ENTROSERVE_SAMPLERD)');
  assert.ok(binary('samplerctl'), 'samplerctl not built (set ENTROSERVE_SAMPLERCTL)');
  server = await startSamplerd();
  client = new SamplerClient(server.address);
  dir = mkdtempSync(path.join(tmpdir(), 'entroserve-node-'));
});

after(async () => {
  client?.close();
  await server?.stop();
  if (dir) rmSync(dir, {recursive: true, force: true});
});

// Deterministic test data: a small LCG (numbers in [-1, 1)).
function noise(seed, n) {
  let x = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x / 2 ** 31 - 1;
  }
  return out;
}

// Logits from peaked (low entropy) to flat (high entropy), with a few
// strong candidates so that the samplers have something to choose from.
function logits(seed, scale) {
  const out = noise(seed, VOCAB).map((v) => v * scale);
  for (let k = 0; k < 6; ++k) out[(seed * 97 + k * 1031) % VOCAB] += scale * (6 - k) * 0.8;
  return out;
}

function attention(seed) {
  return noise(seed + 1000, HEADS * KEYS).map((v) => v * 4);
}

function writeRaw(name, values, dtype) {
  const file = path.join(dir, name);
  writeFileSync(file, encodeValues(values, dtype));
  return file;
}

const FLAG_DTYPE = {float32: 'f32', float16: 'f16', bfloat16: 'bf16'};

// samplerctl sample on the same row: its JSON result record.
async function samplerctlSample(row, flags) {
  const dtype = row.dtype ?? 'float32';
  const args = ['sample', `--server=${server.address}`, '--json',
                `--logits=${writeRaw('logits.raw', row.logits, dtype)}`,
                `--dtype=${FLAG_DTYPE[dtype]}`, ...flags];
  if (row.attention) {
    args.push(`--attention=${writeRaw('attention.raw', row.attention.data, dtype)}`,
              `--heads=${row.attention.heads}`);
  }
  if (row.seed !== undefined) args.push(`--seed=${row.seed}`);
  if (row.step !== undefined) args.push(`--step=${row.step}`);
  const run = await samplerctl(args);
  const records = jsonLines(run.stdout);
  assert.equal(records.length, 1, `samplerctl ${args.join(' ')}:\n${run.stdout}${run.stderr}`);
  return records[0];
}

// Each spec as the Node client takes it and as samplerctl's flag; `step`:
// a step > 0 that needs no state (the stateful samplers need the state of
// the step before).
const SPECS = [
  {spec: 'entropix', flag: '--sampler=entropix', step: 0},
  {spec: {entropix: {temperature: 0.7, top_k: 40}},
   flag: '--spec=entropix { temperature: 0.7 top_k: 40 }', step: 0},
  {spec: 'alpha', flag: '--sampler=alpha', step: 0},
  {spec: {name: 'chain', chain: {temperature: 0.8, topK: 40, topP: 0.95, minP: 0.02}},
   flag: '--spec=name: "chain" chain { temperature: 0.8 top_k: 40 top_p: 0.95 min_p: 0.02 }',
   step: 3},
  {spec: 'greedy', flag: '--sampler=greedy', step: 5},
  {spec: 'mirostat_v2', flag: '--sampler=mirostat_v2', step: 0},
  {spec: {dynatemp: {minTemperature: 0.3}}, flag: '--spec=dynatemp { min_temperature: 0.3 }',
   step: 2},
  {spec: 'top_n_sigma', flag: '--sampler=top_n_sigma', step: 7},
  {spec: {xtc: {probability: 1}}, flag: '--spec=xtc { probability: 1 }', step: 1},
  {spec: 'dry', flag: '--sampler=dry', step: 0},
];

test('every sampler gives the same token, mode, signals, params and state as samplerctl',
     async () => {
  const entropixModes = new Set();
  let compared = 0;
  for (const [i, {spec, flag, step}] of SPECS.entries()) {
    for (const [j, scale] of [8, 2, 0.4].entries()) {
      const seed = 1000 + 10 * i + j;
      const row = {logits: logits(seed, scale), spec, seed, step: j * step};
      if (j !== 1) row.attention = {heads: HEADS, data: attention(seed)};
      const expected = sampleResult(await samplerctlSample(row, [flag]));
      const result = await client.sample({...row, sequenceId: 'samplerctl'});
      assert.deepEqual(result, expected, `spec ${flag}, scale ${scale}`);
      if (flag.includes('entropix')) entropixModes.add(result.mode);
      ++compared;
    }
  }
  assert.equal(compared, SPECS.length * 3);
  // The rows reach more than one of entropix's modes.
  assert.ok(entropixModes.size >= 2, `entropix modes: ${[...entropixModes]}`);
});

test('float16 and bfloat16 rows equal samplerctl on the same bytes', async () => {
  for (const dtype of ['float16', 'bfloat16']) {
    const row = {logits: logits(7, 2), attention: {heads: HEADS, data: attention(7)},
                 spec: 'entropix', seed: '9223372036854775807', dtype};
    const expected = sampleResult(await samplerctlSample(row, ['--sampler=entropix']));
    const result = await client.sample({...row, sequenceId: 'samplerctl'});
    assert.deepEqual(result, expected, dtype);
    assert.equal(result.seed, '9223372036854775807');
  }
});

test('plain arrays, attention rows and a bigint seed encode like Float32Array', async () => {
  const values = logits(11, 2);
  const scores = attention(11);
  const rows = [];
  for (let h = 0; h < HEADS; ++h) rows.push(Array.from(scores.subarray(h * KEYS, (h + 1) * KEYS)));
  const typed = await client.sample({logits: values, attention: {heads: HEADS, data: scores},
                                     spec: 'entropix', seed: 5});
  const plain = await client.sample({logits: Array.from(values), attention: rows,
                                     spec: 'entropix', seed: 5n});
  assert.deepEqual(plain, typed);
  assert.ok(typed.signals.attnEntropy > 0);
});

test('a batch answers each row in order; a bad row fails alone', async () => {
  const good = {logits: logits(3, 2), spec: 'chain', seed: 9, sequenceId: 'a'};
  const alone = await client.sample(good);
  const results = await client.sample([
    good,
    {logits: [1, NaN, 3], spec: 'chain', sequenceId: 'b', step: 4},
    {...good, sequenceId: 'c'},
  ]);
  assert.equal(results.length, 3);
  assert.deepEqual(results[0], alone);
  assert.deepEqual(results[2], {...alone, sequenceId: 'c'});
  assert.ok(results[1].error instanceof EntroserveError);
  assert.equal(results[1].error.code, 3);
  assert.equal(results[1].error.codeName, 'INVALID_ARGUMENT');
  assert.equal(results[1].error.sequenceId, 'b');
  assert.equal(results[1].error.step, 4);
  assert.match(results[1].error.details, /logits\[1\] is NaN/);
});

// The server's code and message, as samplerctl prints them for the same row.
async function expectSameRejection(row, flags, pattern) {
  const expected = sampleResult(await samplerctlSample(row, flags));
  assert.ok(expected.error, 'samplerctl got no error');
  await assert.rejects(client.sample(row), (err) => {
    assert.ok(err instanceof EntroserveError && err instanceof Error);
    assert.equal(err.code, expected.error.code);
    assert.equal(err.details, expected.error.details);
    assert.equal(err.message, `${err.codeName}: ${expected.error.details}`);
    assert.match(err.details, pattern);
    return true;
  });
}

test('NaN logits and an unknown sampler reject with the code and message samplerctl gets',
     async () => {
  const nan = logits(5, 1);
  nan[17] = NaN;
  await expectSameRejection({logits: nan, spec: 'entropix', seed: 1}, ['--sampler=entropix'],
                            /logits\[17\] is NaN/);
  await expectSameRejection({logits: logits(5, 1), spec: 'nucleus9', seed: 1},
                            ['--sampler=nucleus9'], /unknown sampler "nucleus9"/);
  const inf = logits(5, 1);
  inf[3] = Infinity;
  await expectSameRejection({logits: inf, spec: 'greedy'}, ['--sampler=greedy'],
                            /logits\[3\] is \+inf/);
  await expectSameRejection({logits: logits(5, 1), spec: 'alpha', seed: 1, step: 3},
                            ['--sampler=alpha'], /state is required at step 3/);
  // And the server goes on serving.
  const ok = await client.sample({logits: logits(5, 1), spec: 'greedy'});
  assert.equal(ok.mode, 'greedy');
});

test('attention of the wrong rank rejects with INVALID_ARGUMENT naming the field', async () => {
  const row = {logits: logits(6, 1), spec: 'entropix', seed: 2,
               attention: {shape: [2, 3, 4], data: noise(6, 24)}};
  await assert.rejects(client.sample(row), (err) => {
    assert.ok(err instanceof EntroserveError);
    assert.equal(err.code, 3);
    assert.equal(err.codeName, 'INVALID_ARGUMENT');
    assert.match(err.details, /^rows\[0\]\.attention must have shape \[heads, keys\], got rank 3/);
    assert.equal(err.message, `INVALID_ARGUMENT: ${err.details}`);
    return true;
  });
  const ok = await client.sample({...row, attention: {shape: [2, 12], data: noise(6, 24)}});
  assert.equal(typeof ok.token, 'number');
});

test('a message over the server\'s limit ends the call with its gRPC status', async () => {
  const small = await startSamplerd(['--max_message_mb=1']);
  const limited = new SamplerClient(small.address);
  try {
    await assert.rejects(limited.sample({logits: new Float32Array(400000), spec: 'greedy'}),
                         (err) => {
                           assert.ok(err instanceof EntroserveError);
                           assert.equal(err.code, 8);
                           assert.equal(err.codeName, 'RESOURCE_EXHAUSTED');
                           return true;
                         });
    const ok = await limited.sample({logits: [0, 1, 0], spec: 'greedy'});
    assert.equal(ok.token, 1);
  } finally {
    limited.close();
    await small.stop();
  }
});

test('a server that is down is UNAVAILABLE', async () => {
  const gone = await startSamplerd();
  await gone.stop();
  const orphan = new SamplerClient(gone.address, {timeoutMs: 5000});
  await assert.rejects(orphan.sample({logits: [1, 2], spec: 'greedy'}), (err) => {
    assert.ok(err instanceof EntroserveError);
    assert.equal(err.codeName, 'UNAVAILABLE');
    assert.equal(err.code, 14);
    return true;
  });
  orphan.close();
});

test('input mistakes reject with a TypeError naming the field', async () => {
  await assert.rejects(client.sample({logits: [1], spec: {chain: {topz: 3}}}),
                       {name: 'TypeError', message: /row\.spec\.chain: unknown field "topz"/});
  await assert.rejects(client.sample({logits: [1], spec: {chain: {}, greedy: {}}}),
                       {name: 'TypeError', message: /more than one config/});
  await assert.rejects(client.sample({logit: [1], spec: 'greedy'}),
                       {name: 'TypeError', message: /unknown option "logit"/});
  await assert.rejects(client.sample({logits: [1], spec: 'greedy', seed: -1}),
                       {name: 'TypeError', message: /seed must be an unsigned 64-bit integer/});
  await assert.rejects(client.sample({logits: [1], spec: 'greedy', dtype: 'int8'}),
                       {name: 'TypeError', message: /dtype must be/});
  await assert.rejects(
      client.sample({logits: [1], spec: 'greedy', attention: {heads: 2, keys: 2, data: [1]}}),
      {name: 'TypeError', message: /holds 4 values, data has 1/});
});

test('a session carries the state, step and seed; unary and stream agree', async () => {
  const steps = [0, 1, 2, 3, 4].map((k) => ({logits: logits(40 + k, 1.5),
                                             attention: {heads: HEADS, data: attention(40 + k)}}));
  // The seed picked by the server at step 0 is kept for every later step.
  const picked = client.session({spec: 'alpha', sequenceId: 's'});
  const seeded = client.session({spec: 'alpha', sequenceId: 's', seed: 424242});
  const stream = client.stream();
  const streamed = stream.session({spec: 'alpha', sequenceId: 's', seed: '424242'});
  let state;
  let firstSeed;
  for (const [k, step] of steps.entries()) {
    const a = await picked.sample(step);
    firstSeed ??= a.seed;
    // The same row by hand, with the previous state and the first seed.
    const manual = await client.sample({...step, spec: 'alpha', sequenceId: 's', state,
                                        seed: firstSeed, step: k});
    state = manual.state;
    assert.deepEqual(a, manual);
    assert.equal(a.step, k);
    assert.equal(a.seed, firstSeed);
    assert.equal(picked.step, k + 1);
    assert.deepEqual(await streamed.sample(step), await seeded.sample(step));
  }
  // AlphaSampler's window fills with one alpha per step.
  assert.equal(picked.state.alphaWindow.length, 5);
  assert.equal(picked.state.recentTokens.length, 5);
  assert.equal(streamed.seed, '424242');
  // Messages on one stream are answered in order.
  const [x, y] = await Promise.all([stream.sample({logits: [0, 3, 1], spec: 'greedy'}),
                                    stream.sample([{logits: [5, 1, 0], spec: 'greedy'}])]);
  assert.equal(x.token, 1);
  assert.equal(y[0].token, 0);
  stream.end();
});

test('samplers() lists what samplerctl samplers lists, with the defaults', async () => {
  const samplers = await client.samplers();
  const run = await samplerctl(['samplers', `--server=${server.address}`, '--json']);
  const records = jsonLines(run.stdout);
  assert.deepEqual(samplers.map((s) => s.name), records.map((r) => r.name));
  const entropix = samplers.find((s) => s.name === 'entropix');
  assert.equal(entropix.usesAttention, true);
  assert.equal(entropix.defaults.entropix.temperature, Math.fround(0.666));
  assert.equal(entropix.defaults.entropix.topK, 27);
});

test('examples/sample.mjs samples a sequence through a session', async () => {
  for (const extra of [[], ['--stream']]) {
    const run = await example('sample.mjs', [`--server=${server.address}`, '--steps=4',
                                             '--vocab=2000', '--seed=9', ...extra]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines.length, 5, run.stdout);
    lines.slice(0, 4).forEach((line, k) => assert.match(line, new RegExp(`^step +${k}  \\w+ +token`)));
    assert.equal(lines[4], 'seed 9');
  }
  const down = await example('sample.mjs', ['--server=127.0.0.1:1', '--steps=1']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /UNAVAILABLE/);
});

test('a stream keeps the status it failed with; sample() after end() is refused', async () => {
  const small = await startSamplerd(['--max_message_mb=1']);
  const limited = new SamplerClient(small.address);
  try {
    const stream = limited.stream();
    assert.equal((await stream.sample({logits: [0, 1, 0], spec: 'greedy'})).token, 1);
    const exhausted = (err) => err instanceof EntroserveError && err.codeName === 'RESOURCE_EXHAUSTED';
    await assert.rejects(stream.sample({logits: new Float32Array(400000), spec: 'greedy'}),
                         exhausted);
    await new Promise((resolve) => setTimeout(resolve, 200));  // 'end' has come by now
    await assert.rejects(stream.sample({logits: [0, 1, 0], spec: 'greedy'}), exhausted);

    const other = limited.stream();
    other.end();
    await assert.rejects(other.sample({logits: [0, 1, 0], spec: 'greedy'}),
                         (err) => err instanceof EntroserveError && err.code === 9);
  } finally {
    limited.close();
    await small.stop();
  }
});

test('allowed tokens go as the smaller form and every sampler draws only them', async () => {
  assert.deepEqual(allowedTokensField([300, 3, 3], VOCAB, 'a'), {ids: {ids: [3, 300]}});
  const even = Array.from({length: VOCAB / 2}, (_, i) => 2 * i);
  const mask = allowedTokensField(even, VOCAB, 'a').bitmask;
  assert.equal(mask.length, VOCAB / 8);
  assert.equal(mask[0], 0x55);
  assert.throws(() => allowedTokensField([VOCAB], VOCAB, 'rows[0].allowedTokens'),
                /rows\[0\]\.allowedTokens has token 6144, outside the vocabulary \[0, 6144\)/);
  const allowed = [7, 100, 101, 3000];
  for (const spec of ['entropix', 'alpha', 'greedy',
                      {chain: {stages: ['top_k', 'temperature', 'dist'], topK: 2,
                               temperature: 0.7}}]) {
    for (let seed = 0; seed < 10; ++seed) {
      const result = await client.sample({logits: noise(seed + 1, VOCAB), spec, seed,
                                          allowedTokens: allowed});
      assert.ok(allowed.includes(result.token), `${JSON.stringify(spec)} drew ${result.token}`);
    }
  }
  await assert.rejects(client.sample({logits: noise(9, VOCAB), sampler: 'greedy',
                                      allowedTokens: []}),
                       /rows\[0\]\.allowed_tokens allows no token/);
});
