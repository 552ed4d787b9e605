#!/usr/bin/env node
// Streams a generation from runnerd, each token coloured by the mode the
// sampler chose; the finish reason, usage and seed at the end.
//   node clients/node/examples/generate.mjs --server=localhost:50052 \
//       --prompt="The jury said" --sampler=entropix --seed=7 --show-modes
import {parseArgs} from 'node:util';
import {RunnerClient, EntroserveError} from '../src/index.js';

const HELP = `usage: node generate.mjs [--server=HOST:PORT] (--prompt=TEXT | --chat=TEXT [--system=TEXT])
                        [--sampler=NAME | --spec=JSON] [--seed=N] [--max-new-tokens=N]
                        [--stop=S]... [--ignore-eos] [--show-modes] [--json]

Streams a generation from runnerd (runner.v1.Runner/Generate).

  --server          runnerd's address (default localhost:50052)
  --prompt          raw prompt text (no chat template)
  --chat            one user message, rendered with the model's chat template
  --system          a system message before --chat
  --sampler         sampler name, e.g. greedy, chain, entropix or alpha
                    (samplerctl samplers lists them; default: runnerd's default)
  --spec            a SamplerSpec as JSON, e.g. '{"chain": {"temperature": 0.8, "topK": 40}}'
  --seed            seed of the draws (default: picked by the server and printed)
  --max-new-tokens  tokens to generate (default: the server's, 128)
  --stop            stop string (repeat for more)
  --ignore-eos      do not stop at the model's EOS tokens
  --show-modes      colour each token by the sampler's mode (legend first)
  --json            one JSON record per token, then a summary record
  --help            this text`;

const COLORS = {flowing: 32, clarify: 33, explore: 36, resample: 31, adaptive: 35, alpha: 34};
const paint = (mode, text) => COLORS[mode] ? `\x1b[${COLORS[mode]}m${text}\x1b[0m` : text;

async function main() {
  const {values: flags} = parseArgs({options: {
    'server': {type: 'string', default: 'localhost:50052'},
    'prompt': {type: 'string'},
    'chat': {type: 'string'},
    'system': {type: 'string'},
    'sampler': {type: 'string'},
    'spec': {type: 'string'},
    'seed': {type: 'string'},
    'max-new-tokens': {type: 'string'},
    'stop': {type: 'string', multiple: true},
    'ignore-eos': {type: 'boolean', default: false},
    'show-modes': {type: 'boolean', default: false},
    'json': {type: 'boolean', default: false},
    'help': {type: 'boolean', default: false},
  }});
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  if ((flags.prompt === undefined) === (flags.chat === undefined)) {
    console.error('generate.mjs: give one of --prompt or --chat (--help explains)');
    return 2;
  }
  const request = {ignoreEos: flags['ignore-eos']};
  if (flags.prompt !== undefined) request.prompt = flags.prompt;
  if (flags.chat !== undefined) {
    request.messages = [{role: 'user', content: flags.chat}];
    if (flags.system !== undefined) request.messages.unshift({role: 'system', content: flags.system});
  }
  if (flags.sampler !== undefined) request.sampler = flags.sampler;
  if (flags.spec !== undefined) request.sampler = JSON.parse(flags.spec);
  if (flags.seed !== undefined) request.seed = flags.seed;
  if (flags['max-new-tokens'] !== undefined) request.maxNewTokens = Number(flags['max-new-tokens']);
  if (flags.stop !== undefined) request.stop = flags.stop;

  const client = new RunnerClient(flags.server);
  try {
    const generation = client.generate(request);
    if (flags['show-modes'] && !flags.json) {
      console.log(`legend: ${Object.keys(COLORS).map((m) => paint(m, m)).join(' ')}`);
    }
    for await (const token of generation) {
      if (flags.json) console.log(JSON.stringify(token));
      else process.stdout.write(flags['show-modes'] ? paint(token.mode, token.text) : token.text);
    }
    const {finishReason, usage, seed} = generation;
    if (flags.json) {
      console.log(JSON.stringify({finishReason, usage, seed}));
    } else {
      process.stdout.write('\n');
      console.error(`[finish: ${finishReason}; ${usage.promptTokens} prompt + ` +
                    `${usage.generatedTokens} generated tokens; seed ${seed}; ` +
                    `${usage.totalMs.toFixed(1)} ms]`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof EntroserveError)) throw err;
    console.error(`generate.mjs: ${err.message} (runnerd at ${flags.server})`);
    return 1;
  } finally {
    client.close();
  }
}

main().then((code) => { process.exitCode = code; }, (err) => {
  console.error(`generate.mjs: ${err.message}`);
  process.exitCode = 2;
});
