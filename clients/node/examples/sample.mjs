#!/usr/bin/env node
// Samples a synthetic sequence through samplerd, one step at a time through a
// session (which sends back each step's state and keeps the seed), and
// prints each step's mode, token, signals and parameters.
//   node clients/node/examples/sample.mjs --server=localhost:50051 --sampler=entropix
import {parseArgs} from 'node:util';
import {SamplerClient, EntroserveError} from '../src/index.js';

const HELP = `usage: node sample.mjs [--server=HOST:PORT] [--sampler=NAME] [--steps=N] [--vocab=V]
                      [--heads=H] [--seed=N] [--stream] [--list]

Streams a synthetic sequence of logits and attention scores through samplerd
(sampler.v1.Sampler) and prints what it chose at each step.

  --server   samplerd's address (default localhost:50051)
  --sampler  sampler name (default entropix)
  --steps    steps (default 20)
  --vocab    vocabulary size of the synthetic logits (default 32000)
  --heads    attention heads (default 8)
  --seed     seed of the draws (default: picked by samplerd at step 0, then kept)
  --stream   one bidirectional SampleStream instead of a unary call per step
  --list     list samplerd's samplers and their defaults instead
  --help     this text`;

// Logits whose sharpness changes from step to step, so that entropy-based
// samplers meet both confident and uncertain steps.
function syntheticStep(step, vocab, heads) {
  let x = (step + 1) * 2654435761 >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const sharpness = 0.5 + 6 * Math.abs(Math.sin(step * 0.7));
  const logits = new Float32Array(vocab);
  for (let i = 0; i < vocab; ++i) logits[i] = next() * 2;
  for (let k = 0; k < 8; ++k) logits[Math.floor(next() * vocab)] += sharpness * (8 - k) / 2;
  const keys = 16 + step;
  const data = new Float32Array(heads * keys).map(() => next() * 4);
  return {logits, attention: {heads, keys, data}};
}

async function listSamplers(client) {
  for (const s of await client.samplers()) {
    const config = Object.keys(s.defaults).find((k) => k !== 'name');
    console.log(`${s.name.padEnd(12)} ${s.description}\n${' '.repeat(13)}defaults: ` +
                JSON.stringify(s.defaults[config]));
  }
}

async function sampleSequence(client, flags) {
  const stream = flags.stream ? client.stream() : null;
  const session = (stream ?? client).session({spec: flags.sampler, seed: flags.seed,
                                              sequenceId: 'example'});
  for (let step = 0; step < Number(flags.steps); ++step) {
    const r = await session.sample(syntheticStep(step, Number(flags.vocab), Number(flags.heads)));
    const params = Object.entries(r.params)
                       .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`).join(' ');
    console.log(`step ${String(r.step).padStart(3)}  ${r.mode.padEnd(9)} token ` +
                `${String(r.token).padStart(6)}${r.inserted ? ' (inserted)' : ''}  ` +
                `H=${r.signals.entropy.toFixed(3)} V=${r.signals.varentropy.toFixed(3)} ` +
                `logp=${r.logprob.toFixed(3)}  ${params}`);
  }
  console.log(`seed ${session.seed}`);
  stream?.end();
}

const OPTIONS = {
  server: {type: 'string', default: 'localhost:50051'},
  sampler: {type: 'string', default: 'entropix'},
  steps: {type: 'string', default: '20'},
  vocab: {type: 'string', default: '32000'},
  heads: {type: 'string', default: '8'},
  seed: {type: 'string'},
  stream: {type: 'boolean', default: false},
  list: {type: 'boolean', default: false},
  help: {type: 'boolean', default: false},
};

let flags;
try {
  ({values: flags} = parseArgs({options: OPTIONS}));
} catch (err) {
  console.error(`sample.mjs: ${err.message} (--help explains)`);
  process.exit(2);
}
if (flags.help) {
  console.log(HELP);
} else {
  const client = new SamplerClient(flags.server);
  // A server's error (EntroserveError) exits 1 with its code name and message.
  await (flags.list ? listSamplers(client) : sampleSequence(client, flags)).catch((err) => {
    if (!(err instanceof EntroserveError)) throw err;
    console.error(`sample.mjs: ${err.message} (samplerd at ${flags.server})`);
    process.exitCode = 1;
  });
  client.close();
}
